"""Reading the audit trail (SPEC §2.7); writing it is ``entities._record``'s job."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.errors import NotFoundError, ValidationError
from statusd.models import QueryHistoryArgs, check_id_text


def _resolve(conn: sqlite3.Connection, text: str) -> tuple[str, str]:
    key = check_id_text(text, "id")
    rows = conn.execute(
        "SELECT DISTINCT entity_id, entity FROM history WHERE entity_id >= ? AND entity_id < ? LIMIT 2",
        (key, key + "\x7f"),
    ).fetchall()
    if not rows:
        raise NotFoundError("entity", text)
    if len(rows) > 1:
        raise ValidationError.one("id", f"id prefix {text!r} is ambiguous; give more characters")
    return str(rows[0][0]), str(rows[0][1])


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
