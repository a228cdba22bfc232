"""Postgres baselines: a copy of a benchmark store in a throwaway schema, and the queries a
Postgres-primary server would run per call (plain asyncpg through a pool, no MCP transport).

The copy takes the store's own rows (same ids, same values, same shape) so a baseline answers the
same question over the same data. Columns keep SQLite's types (TEXT timestamps and JSON, BIGINT
integers) and the store's indexes are recreated, vendor names indexed on ``lower(name)``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

TABLES = ("work_items", "dependencies", "vendors", "deployments", "enhancements", "configuration")
INDEXES = (
    "CREATE INDEX ON work_items (parent_id)",
    "CREATE INDEX ON work_items (archived_at, deleted_at, status)",
    "CREATE INDEX ON work_items (created_at, id)",
    "CREATE UNIQUE INDEX ON dependencies (work_item_id, depends_on_id, dependency_type)",
    "CREATE INDEX ON dependencies (depends_on_id)",
    "CREATE UNIQUE INDEX ON vendors (lower(name))",
    "CREATE INDEX ON deployments (timestamp, id)",
)
_TYPES = {"TEXT": "text", "INTEGER": "bigint"}

WORK_ITEM_COLUMNS = (
    "id, item_type, title, description, status, priority, parent_id, depth, branch_name, commit_hash, pr_number, "
    "metadata, claimed_by, claim_expires_at, deleted_at, archived_at, version, created_at, created_by, updated_at, "
    "updated_by"
)

VENDOR = (
    "SELECT id, name, status, metadata, deleted_at, version, created_at, created_by, updated_at, updated_by "
    "FROM vendors WHERE lower(name) = lower($1) AND deleted_at IS NULL"
)
ITEM = f"SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE id = $1"
CHAIN = """
WITH RECURSIVE chain(id, title, item_type, status, parent_id, n) AS (
    SELECT p.id, p.title, p.item_type, p.status, p.parent_id, 1
      FROM work_items p WHERE p.id = (SELECT parent_id FROM work_items WHERE id = $1)
    UNION ALL
    SELECT p.id, p.title, p.item_type, p.status, p.parent_id, c.n + 1
      FROM work_items p JOIN chain c ON p.id = c.parent_id WHERE c.n < 6)
SELECT id, title, item_type, status FROM chain ORDER BY n DESC"""
DEPENDENCIES = """
SELECT d.dependency_type, 'outgoing', o.id, o.title, o.item_type, o.status
  FROM dependencies d JOIN work_items o ON o.id = d.depends_on_id
 WHERE d.work_item_id = $1 AND d.deleted_at IS NULL
UNION ALL
SELECT d.dependency_type, 'incoming', o.id, o.title, o.item_type, o.status
  FROM dependencies d JOIN work_items o ON o.id = d.work_item_id
 WHERE d.depends_on_id = $1 AND d.deleted_at IS NULL"""
CHILDREN = """
WITH RECURSIVE sub(id) AS (
    SELECT id FROM work_items WHERE parent_id = $1
    UNION ALL SELECT w.id FROM work_items w JOIN sub ON w.parent_id = sub.id)
SELECT id, item_type, title, status, priority, parent_id, depth, version, updated_at FROM work_items
 WHERE id IN (SELECT id FROM sub) AND deleted_at IS NULL AND archived_at IS NULL
 ORDER BY depth, created_at, id"""
UPDATE = (
    "UPDATE work_items SET title = $3, version = version + 1, updated_at = $4, updated_by = $5 "
    "WHERE id = $1 AND version = $2 RETURNING version"
)
VERSION = "SELECT version FROM work_items WHERE id = $1"

_LIVE = "archived_at IS NULL AND deleted_at IS NULL"
READY = f"""SELECT COUNT(*) FROM work_items w WHERE w.status = 'active' AND w.{_LIVE.replace(" AND ", " AND w.")}
    AND (w.claimed_by IS NULL OR w.claim_expires_at <= $1)
    AND NOT EXISTS (SELECT 1 FROM dependencies d JOIN work_items o ON o.id = d.depends_on_id
        WHERE d.work_item_id = w.id AND d.dependency_type = 'depends_on' AND d.deleted_at IS NULL
          AND o.status != 'completed' AND o.deleted_at IS NULL AND o.archived_at IS NULL)
    AND NOT EXISTS (SELECT 1 FROM dependencies d JOIN work_items o ON o.id = d.work_item_id
        WHERE d.depends_on_id = w.id AND d.dependency_type = 'blocks' AND d.deleted_at IS NULL
          AND o.status != 'completed' AND o.deleted_at IS NULL AND o.archived_at IS NULL)"""
STATUS = (
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'operational') FROM vendors WHERE deleted_at IS NULL",
    f"SELECT item_type, status, priority, COUNT(*) FROM work_items WHERE {_LIVE} GROUP BY item_type, status, priority",
    "SELECT COUNT(*) FROM work_items WHERE archived_at IS NOT NULL",
    "SELECT id, timestamp, metadata FROM deployments ORDER BY timestamp DESC, id DESC LIMIT 10",
    "SELECT id, title, priority, status, target_quarter FROM enhancements "
    "WHERE status != 'completed' AND deleted_at IS NULL ORDER BY created_at, id",
    "SELECT * FROM configuration ORDER BY created_at LIMIT 1",
)


async def copy_store(conn: asyncpg.Connection, store_path: Path) -> dict[str, int]:
    """Create the store's tables in the connection's schema and copy every row; return row counts."""
    src = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    counts: dict[str, int] = {}
    try:
        for table in TABLES:
            info = src.execute(f"PRAGMA table_info({table})").fetchall()
            columns = [(row[1], _TYPES[row[2].upper()]) for row in info]
            body = ", ".join(f"{name} {kind}{' PRIMARY KEY' if name == 'id' else ''}" for name, kind in columns)
            await conn.execute(f"CREATE TABLE {table} ({body})")
            names = [name for name, _ in columns]
            rows = src.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall()
            await conn.copy_records_to_table(table, records=rows, columns=names)
            counts[table] = len(rows)
    finally:
        src.close()
    for sql in INDEXES:
        await conn.execute(sql)
    await conn.execute("ANALYZE")
    return counts


async def query_item(conn: asyncpg.Connection, ident: str, *, children: bool = False) -> dict[str, Any]:
    """What ``query_work_item`` reads: the row, its parent chain, dependencies, optionally the subtree."""
    row = await conn.fetchrow(ITEM, ident)
    out = {"item": row, "parent_chain": await conn.fetch(CHAIN, ident)}
    if children:
        out["children"] = await conn.fetch(CHILDREN, ident)
    out["dependencies"] = await conn.fetch(DEPENDENCIES, ident)
    return out


async def full_status(conn: asyncpg.Connection, now: str) -> list[Any]:
    """The aggregates ``generate_full_status`` reports, one query each."""
    out: list[Any] = [await conn.fetch(sql) for sql in STATUS]
    out.append(await conn.fetchval(READY, now))
    return out


async def update_title(conn: asyncpg.Connection, ident: str, version: int, title: str, now: str) -> int | None:
    """Compare-and-set update; the new version, or None when ``version`` is stale."""
    value = await conn.fetchval(UPDATE, ident, version, title, now, "bench")
    return None if value is None else int(value)
