"""Store reads and writes the importers and the beads export need (sync/importers keeps the logic)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.models import new_id
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import WORK_ITEM


def items_from_source(conn: sqlite3.Connection, source: str) -> list[dict[str, Any]]:
    """Every work item (deleted ones included) whose ``metadata.source`` is ``source``, decoded."""
    rows = conn.execute(f"{WORK_ITEM.select} WHERE json_extract(metadata, '$.source') = ?", (source,)).fetchall()
    return [ent.decode(WORK_ITEM, raw) for raw in rows]


def live_items(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Live (not deleted, not archived) work items, parents before children, oldest first."""
    sql = f"{WORK_ITEM.select} WHERE deleted_at IS NULL AND archived_at IS NULL ORDER BY depth, created_at, id"
    return [ent.decode(WORK_ITEM, r) for r in conn.execute(sql)]


def live_edges(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(work_item_id, depends_on_id, dependency_type) of every live dependency edge."""
    return list(
        conn.execute("SELECT work_item_id, depends_on_id, dependency_type FROM dependencies WHERE deleted_at IS NULL")
    )


def live_edges_with_origin(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, str]]:
    """Like :func:`live_edges`, plus each edge's created_at and created_by."""
    return list(
        conn.execute(
            "SELECT work_item_id, depends_on_id, dependency_type, created_at, created_by "
            "FROM dependencies WHERE deleted_at IS NULL"
        )
    )


def record_import_conflict(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    item_id: str,
    fields: dict[str, Any],
    local_op: dict[str, Any],
    remote_version: int,
) -> None:
    """Keep a clash between a re-import and statusd's own change as an open ``import`` conflict."""
    conn.execute(
        "INSERT INTO conflicts(id, entity, entity_id, kind, fields, local_op, remote_version, detected_at) "
        "VALUES (?, ?, ?, 'import', ?, ?, ?, ?)",
        (new_id(), WORK_ITEM.name, item_id, ent.dumps(fields), json.dumps(local_op), remote_version, ctx.now),
    )
