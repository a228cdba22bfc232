"""The audit trail (SPEC §2.7): one row per change, written by ``insert`` and nothing else."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.models import QueryHistoryArgs
from statusd.store import ids
from statusd.store.packed import packed


def insert(
    conn: sqlite3.Connection,
    *,
    entity: str,
    entity_id: str,
    version: int,
    changes: str,
    actor: str,
    at: str,
    machine: str,
    via: str,
    op_id: str | None,
) -> None:
    """Append one change (``changes`` already JSON) to the history."""
    conn.execute(
        "INSERT INTO history(entity, entity_id, version, changes, actor, at, machine, via, op_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entity, entity_id, version, changes, actor, at, machine, via, op_id),
    )


def insert_many(
    conn: sqlite3.Connection,
    *,
    entity: str,
    rows: list[tuple[str, int, str, str | None]],
    actor: str,
    at: str,
    machine: str,
    via: str,
) -> None:
    """Append ``(entity id, version, changes as JSON, op id)`` changes of one writer, in order."""
    conn.execute(
        "INSERT INTO history(entity, entity_id, version, changes, actor, at, machine, via, op_id) "
        "SELECT ?, value ->> 0, value ->> 1, value ->> 2, ?, ?, ?, ?, value ->> 3 FROM json_each(?)",
        (entity, actor, at, machine, via, packed(rows)),
    )


def _resolve(conn: sqlite3.Connection, text: str) -> tuple[str, str]:
    query = "SELECT DISTINCT entity_id, entity FROM history WHERE entity_id >= ? AND entity_id < ? LIMIT 2"
    row = ids.one_by_prefix(conn, query, text, entity="entity", name_field=False)
    return str(row[0]), str(row[1])


def query(conn: sqlite3.Connection, args: QueryHistoryArgs) -> dict[str, Any]:
    ident, entity = _resolve(conn, args.id)
    rows = conn.execute(
        "SELECT version, at, actor, via, machine, changes FROM history WHERE entity_id = ? ORDER BY seq DESC LIMIT ?",
        (ident, args.limit),
    ).fetchall()
    versions = [
        {"version": r[0], "at": r[1], "by": r[2], "via": r[3], "machine": r[4], "changes": json.loads(r[5])}
        for r in rows
    ]
    return {"id": ident, "entity": entity, "versions": versions}


def state_at(conn: sqlite3.Connection, ident: str, version: int) -> dict[str, Any]:
    """Rebuild an entity's fields as they were at ``version`` by replaying its history."""
    state: dict[str, Any] = {}
    for (changes,) in conn.execute(
        "SELECT changes FROM history WHERE entity_id = ? AND version <= ? ORDER BY seq", (ident, version)
    ):
        for field, change in json.loads(changes).items():
            state[field] = change["new"]
    return state
