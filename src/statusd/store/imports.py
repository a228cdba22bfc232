"""Store reads and writes the importers and the beads export need (sync/importers keeps the logic)."""

from __future__ import annotations

import sqlite3
from typing import Any

from statusd.store import conflicts
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import VENDOR, WORK_ITEM


def source_keys(conn: sqlite3.Connection, source: str) -> list[tuple[str, Any]]:
    """(id, metadata.source_key) of every work item (deleted ones included) imported from ``source``."""
    sql = (
        "SELECT id, json_extract(metadata, '$.source_key') FROM work_items WHERE json_extract(metadata, '$.source') = ?"
    )
    return list(conn.execute(sql, (source,)))


def last_history_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()[0])


def dependency_changes_since(conn: sqlite3.Connection, seq: int) -> tuple[int, list[tuple[str, str, str]]]:
    """(last history seq, live edges changed after ``seq``): what other writers added since."""
    last = last_history_seq(conn)
    rows = conn.execute(
        "SELECT d.work_item_id, d.depends_on_id, d.dependency_type FROM (SELECT DISTINCT entity_id FROM history "
        "WHERE seq > ? AND seq <= ? AND entity = 'dependency') h JOIN dependencies d ON d.id = h.entity_id "
        "WHERE d.deleted_at IS NULL",
        (seq, last),
    ).fetchall()
    return last, list(rows)


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
) -> str:
    """Keep a clash between a re-import and statusd's own change as an open ``import`` conflict."""
    return conflicts.insert(conn, ctx, "import", WORK_ITEM.name, item_id, fields, local_op, remote_version)


# --- the markdown mirror's import and the legacy STATUS.md migration ---------------------------


def record_field_conflict(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity: str,
    ident: str,
    fields: dict[str, Any],
    op: dict[str, Any],
    remote_version: int,
) -> None:
    """Keep an edit of the markdown file that clashes with a newer store version as a ``field`` conflict."""
    conflicts.insert(conn, ctx, "field", entity, ident, fields, op, remote_version)


def vendor_name_taken(conn: sqlite3.Connection, name: str, other_than: str) -> bool:
    """Whether a live vendor other than ``other_than`` has this name (case-insensitive)."""
    return (
        conn.execute(
            "SELECT 1 FROM vendors WHERE name = ? COLLATE NOCASE AND id != ? AND deleted_at IS NULL",
            (name, other_than),
        ).fetchone()
        is not None
    )


def live_vendor_by_name(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """The live vendor with this name (case-insensitive), decoded, or None."""
    row = conn.execute(f"{VENDOR.select} WHERE name = ? COLLATE NOCASE AND deleted_at IS NULL", (name,)).fetchone()
    return None if row is None else ent.decode(VENDOR, row)


def live_vendor_id(conn: sqlite3.Connection, name: str) -> str | None:
    sql = "SELECT id FROM vendors WHERE name = ? COLLATE NOCASE AND deleted_at IS NULL"
    row = conn.execute(sql, (name,)).fetchone()
    return None if row is None else str(row[0])


def live_vendor_summaries(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(name, status, metadata as JSON text) of every live vendor."""
    return list(conn.execute("SELECT name, status, metadata FROM vendors WHERE deleted_at IS NULL"))


def live_item_id(conn: sqlite3.Connection, title: str, parent: str | None) -> str | None:
    """The live, unarchived work item with this title under ``parent`` (None: top level)."""
    row = conn.execute(
        "SELECT id FROM work_items WHERE title = ? AND parent_id IS ? AND deleted_at IS NULL AND archived_at IS NULL",
        (title, parent),
    ).fetchone()
    return None if row is None else str(row[0])


def deployment_id_for(conn: sqlite3.Connection, date: str, pr_number: Any) -> str | None:
    """The deployment made on ``date`` (YYYY-MM-DD) for this pull request."""
    row = conn.execute(
        "SELECT id FROM deployments WHERE substr(timestamp, 1, 10) = ? AND json_extract(metadata, '$.pr_number') = ?",
        (date, pr_number),
    ).fetchone()
    return None if row is None else str(row[0])


def live_enhancement_id(conn: sqlite3.Connection, title: str) -> str | None:
    row = conn.execute("SELECT id FROM enhancements WHERE title = ? AND deleted_at IS NULL", (title,)).fetchone()
    return None if row is None else str(row[0])


def session_id_by_frontmatter(conn: sqlite3.Connection, session_id: Any) -> str | None:
    """The live session item whose prompt front matter carried this ``session_id``."""
    row = conn.execute(
        "SELECT id FROM work_items WHERE item_type = 'session' AND deleted_at IS NULL "
        "AND json_extract(metadata, '$.yaml_frontmatter.session_id') = ?",
        (session_id,),
    ).fetchone()
    return None if row is None else str(row[0])


def session_id_by_prompt(conn: sqlite3.Connection, title: str, prompt: str | None) -> str | None:
    """The live session item with this title and prompt text."""
    row = conn.execute(
        "SELECT id FROM work_items WHERE item_type = 'session' AND deleted_at IS NULL AND title = ? "
        "AND description IS ?",
        (title, prompt),
    ).fetchone()
    return None if row is None else str(row[0])
