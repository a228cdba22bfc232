"""Dependencies between work items (SPEC §2.2) and the ready rule.

An edge ``(A, B, depends_on)`` means A waits for B; ``(A, B, blocks)`` means B waits for A. Cycles
are checked in that "waits for" graph. Edges are entities with a deterministic id, so the same
edge added on two machines is one edge, and removal is a soft delete that replicates.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from statusd.errors import CycleDetectedError, NotFoundError
from statusd.models import DependencyArgs
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import DEPENDENCY, WORK_ITEM

_EDGE_NAMESPACE = uuid.UUID("5f0c8a4e-2b1d-4c3e-9a7f-6d5e4c3b2a19")

# "Waits for" pairs (waiter, prerequisite) over live edges.
_WAITS = """
    SELECT work_item_id AS waiter, depends_on_id AS prereq FROM dependencies
     WHERE dependency_type = 'depends_on' AND deleted_at IS NULL
    UNION ALL
    SELECT depends_on_id, work_item_id FROM dependencies
     WHERE dependency_type = 'blocks' AND deleted_at IS NULL
"""

# Ready (SPEC §2.2), for a work item aliased ``w``; one ``?`` parameter: now. Deleted or archived
# prerequisites no longer hold anything up.
READY_SQL = """(w.status = 'active' AND w.deleted_at IS NULL AND w.archived_at IS NULL
    AND (w.claimed_by IS NULL OR w.claim_expires_at <= ?)
    AND NOT EXISTS (SELECT 1 FROM dependencies d JOIN work_items o ON o.id = d.depends_on_id
        WHERE d.work_item_id = w.id AND d.dependency_type = 'depends_on' AND d.deleted_at IS NULL
          AND o.status != 'completed' AND o.deleted_at IS NULL AND o.archived_at IS NULL)
    AND NOT EXISTS (SELECT 1 FROM dependencies d JOIN work_items o ON o.id = d.work_item_id
        WHERE d.depends_on_id = w.id AND d.dependency_type = 'blocks' AND d.deleted_at IS NULL
          AND o.status != 'completed' AND o.deleted_at IS NULL AND o.archived_at IS NULL))"""


# The same rule over a whole table: unfinished prerequisites are found once, not per item. One
# ``?`` parameter: now. Prefer it for counts and lists; READY_SQL for a single item. CROSS JOIN
# walks the (few) edges and looks their items up by id; left to itself SQLite walked every live
# item looking for edges (41 ms against 5 ms at 100,000 items).
_UNFINISHED = "o.status != 'completed' AND o.deleted_at IS NULL AND o.archived_at IS NULL"
READY_BULK_SQL = f"""(w.status = 'active' AND w.deleted_at IS NULL AND w.archived_at IS NULL
    AND (w.claimed_by IS NULL OR w.claim_expires_at <= ?)
    AND w.id NOT IN (
        SELECT d.work_item_id FROM dependencies d CROSS JOIN work_items o ON o.id = d.depends_on_id
         WHERE d.dependency_type = 'depends_on' AND d.deleted_at IS NULL AND {_UNFINISHED}
        UNION ALL
        SELECT d.depends_on_id FROM dependencies d CROSS JOIN work_items o ON o.id = d.work_item_id
         WHERE d.dependency_type = 'blocks' AND d.deleted_at IS NULL AND {_UNFINISHED}))"""


def edge_id(work_item_id: str, depends_on_id: str, dependency_type: str) -> str:
    return str(uuid.uuid5(_EDGE_NAMESPACE, f"{work_item_id}|{depends_on_id}|{dependency_type}"))


def _waiter_prereq(a: str, b: str, kind: str) -> tuple[str, str]:
    return (a, b) if kind == "depends_on" else (b, a)


def _edge_items(conn: sqlite3.Connection, args: DependencyArgs) -> tuple[dict[str, Any], dict[str, Any]]:
    a = ent.load(conn, WORK_ITEM, args.work_item_id, "work_item_id")
    b = ent.load(conn, WORK_ITEM, args.depends_on_id, "depends_on_id")
    for row, field in ((a, "work_item_id"), (b, "depends_on_id")):
        if row["deleted_at"]:
            raise NotFoundError("work_item", row["id"], field)
    return a, b


def add(conn: sqlite3.Connection, ctx: WriteContext, args: DependencyArgs) -> dict[str, Any]:
    a, b = _edge_items(conn, args)
    if a["id"] == b["id"]:
        raise CycleDetectedError("an item cannot depend on itself", work_item_id=a["id"])
    ident = edge_id(a["id"], b["id"], args.dependency_type)
    existing = ent.get(conn, DEPENDENCY, ident)
    if existing is not None and existing["deleted_at"] is None:
        return existing
    waiter, prereq = _waiter_prereq(a["id"], b["id"], args.dependency_type)
    if _reaches(conn, prereq, waiter):
        raise CycleDetectedError(
            f"{waiter} waiting for {prereq} would close a cycle: {prereq} already waits for {waiter}",
            work_item_id=a["id"],
            depends_on_id=b["id"],
        )
    if existing is not None:
        return ent.update(conn, ctx, DEPENDENCY, existing, {"deleted_at": None})
    values = {"work_item_id": a["id"], "depends_on_id": b["id"], "dependency_type": args.dependency_type}
    return ent.insert(conn, ctx, DEPENDENCY, values, ident)


def check_no_cycle(conn: sqlite3.Connection, work_item_id: str, depends_on_id: str, dependency_type: str) -> None:
    """Raise CycleDetectedError when this edge, made live, would close a cycle."""
    waiter, prereq = _waiter_prereq(work_item_id, depends_on_id, dependency_type)
    if waiter == prereq or _reaches(conn, prereq, waiter):
        raise CycleDetectedError(
            f"{waiter} waiting for {prereq} would close a cycle: {prereq} already waits for {waiter}",
            work_item_id=work_item_id,
            depends_on_id=depends_on_id,
        )


def remove(conn: sqlite3.Connection, ctx: WriteContext, args: DependencyArgs) -> dict[str, Any]:
    a = ent.load(conn, WORK_ITEM, args.work_item_id, "work_item_id")
    b = ent.load(conn, WORK_ITEM, args.depends_on_id, "depends_on_id")
    existing = ent.get(conn, DEPENDENCY, edge_id(a["id"], b["id"], args.dependency_type))
    if existing is None or existing["deleted_at"] is not None:
        raise NotFoundError("dependency", f"{a['id']} {args.dependency_type} {b['id']}")
    return ent.update(conn, ctx, DEPENDENCY, existing, {"deleted_at": ctx.now})


def _reaches(conn: sqlite3.Connection, start: str, target: str) -> bool:
    """Does ``start`` (transitively) wait for ``target``?"""
    row = conn.execute(
        f"""WITH RECURSIVE waits(waiter, prereq) AS ({_WAITS}),
                reach(id) AS (SELECT ? UNION SELECT waits.prereq FROM waits JOIN reach ON waits.waiter = reach.id)
            SELECT 1 FROM reach WHERE id = ? LIMIT 1""",
        (start, target),
    ).fetchone()
    return row is not None


def waiting_on(conn: sqlite3.Connection, item_id: str) -> list[str]:
    rows = conn.execute(
        f"""SELECT w.prereq FROM ({_WAITS}) w JOIN work_items o ON o.id = w.prereq
            WHERE w.waiter = ? AND o.status != 'completed' AND o.deleted_at IS NULL AND o.archived_at IS NULL""",
        (item_id,),
    ).fetchall()
    return [r[0] for r in rows]


def for_item(conn: sqlite3.Connection, item_id: str) -> list[dict[str, Any]]:
    """Edges touching an item: ``direction`` is ``outgoing`` when the item is the edge's subject."""
    rows = conn.execute(
        """SELECT d.dependency_type, 'outgoing', o.id, o.title, o.item_type, o.status
             FROM dependencies d JOIN work_items o ON o.id = d.depends_on_id
            WHERE d.work_item_id = ?1 AND d.deleted_at IS NULL
           UNION ALL
           SELECT d.dependency_type, 'incoming', o.id, o.title, o.item_type, o.status
             FROM dependencies d JOIN work_items o ON o.id = d.work_item_id
            WHERE d.depends_on_id = ?1 AND d.deleted_at IS NULL""",
        (item_id,),
    ).fetchall()
    return [
        {
            "type": r[0],
            "direction": r[1],
            "related_item": {"id": r[2], "title": r[3], "item_type": r[4], "status": r[5]},
        }
        for r in rows
    ]
