"""The replication queue and bookkeeping the sync loop reads and writes (SPEC §5.2, §5.5).

Operations are appended by ``entities`` in the transaction that makes the change; this module is
everything else the replicator and the daemon ask of the store, so neither runs SQL of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from statusd.store.db import WriteContext

_OP_COLUMNS = "seq, op_id, entity, entity_id, base_version, new_version, changes, created_at, actor, via, asserts"


def held_runs(conn: sqlite3.Connection) -> list[str]:
    """Import runs not yet done: their operations (and later ones on the same entities) wait."""
    sql = "SELECT id FROM import_runs WHERE state != 'done' AND state != 'rolled_back'"
    return [r[0] for r in conn.execute(sql)]


def pending_ops(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` pushable operations in push order (``asserts`` is local: the hub ignores it).

    An operation of an import run that is not done yet is held back, and so is any later operation
    on an entity such an operation changes: per entity, the order stays the order of the outbox.
    The held rows are never scanned: free operations and those of done runs are read by index
    (``outbox_run``) and merged.
    """
    held = held_runs(conn)
    rows = conn.execute(
        f"SELECT {_OP_COLUMNS} FROM outbox WHERE run_id IS NULL ORDER BY seq LIMIT ?", (limit,)
    ).fetchall()
    finished = conn.execute(
        "SELECT r.id FROM import_runs r WHERE r.state = 'done' "
        "AND EXISTS (SELECT 1 FROM outbox o WHERE o.run_id = r.id)"
    ).fetchall()
    if finished:
        for (run_id,) in finished:
            rows += conn.execute(
                f"SELECT {_OP_COLUMNS} FROM outbox WHERE run_id = ? ORDER BY seq LIMIT ?", (run_id, limit)
            ).fetchall()
        rows = sorted(rows)[:limit]
    if held:
        marks = ", ".join("?" * len(held))
        behind = f"SELECT 1 FROM outbox WHERE entity_id = ? AND seq < ? AND run_id IN ({marks}) LIMIT 1"
        rows = [r for r in rows if conn.execute(behind, (r[3], r[0], *held)).fetchone() is None]
    return [
        {
            "seq": r[0],
            "op_id": r[1],
            "entity": r[2],
            "entity_id": r[3],
            "base_version": r[4],
            "new_version": r[5],
            "changes": json.loads(r[6]),
            "at": r[7],
            "actor": r[8],
            "via": r[9],
            "asserts": json.loads(r[10]) if r[10] is not None else None,
        }
        for r in rows
    ]


def pending_for(conn: sqlite3.Connection, entity_id: str) -> list[tuple[str, dict[str, Any], str, str]]:
    """(op id, changes, actor, queued at) of an entity's queued operations, oldest first."""
    rows = conn.execute(
        "SELECT op_id, changes, actor, created_at FROM outbox WHERE entity_id = ? ORDER BY seq", (entity_id,)
    )
    return [(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]


def has_pending(conn: sqlite3.Connection, entity_id: str) -> bool:
    return conn.execute("SELECT 1 FROM outbox WHERE entity_id = ? LIMIT 1", (entity_id,)).fetchone() is not None


def summary(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """(pending operations, when the oldest was queued); held ones included (see :func:`held_count`)."""
    row = conn.execute("SELECT COUNT(*), MIN(created_at) FROM outbox").fetchone()
    return int(row[0]), row[1]


def held_count(conn: sqlite3.Connection) -> int:
    """Pending operations of import runs not yet done: they leave only once their run is."""
    held = held_runs(conn)
    if not held:
        return 0
    marks = ", ".join("?" * len(held))
    return int(conn.execute(f"SELECT COUNT(*) FROM outbox WHERE run_id IN ({marks})", held).fetchone()[0])


def known_op_ids(conn: sqlite3.Connection, op_ids: Iterable[str]) -> set[str]:
    """Which of these operation ids this store's history already has (its own, or pulled before)."""
    ids = [i for i in op_ids if i]
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        known.update(r[0] for r in conn.execute(f"SELECT op_id FROM history WHERE op_id IN ({marks})", chunk))
    return known


def has_local_data(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM work_items) + (SELECT COUNT(*) FROM vendors) "
        "+ (SELECT COUNT(*) FROM deployments) + (SELECT COUNT(*) FROM enhancements)"
    ).fetchone()
    return bool(row[0])


def drop_default_configuration(conn: sqlite3.Connection, ctx: WriteContext) -> None:
    # An empty store's default configuration carries no one's intent: the hub's state wins. (Writes
    # made while the bootstrap runs are real and stay queued.)
    conn.execute("DELETE FROM outbox WHERE base_version = 0 AND entity = 'configuration'")


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def write_meta(conn: sqlite3.Connection, ctx: WriteContext, key: str, value: str) -> None:
    """``set_meta`` as a write transaction of its own."""
    set_meta(conn, key, value)


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])
