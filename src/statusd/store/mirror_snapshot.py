"""The store reads behind the markdown mirror's snapshot (sync/mirror_state.py turns rows into a state).

Each function returns plain row tuples in the order the file shows them; all run inside the
caller's read transaction.
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter
from pathlib import Path
from typing import Any

READ_CACHE_KIB = 256


def connect(store_path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection for snapshots, with a small page cache.

    A snapshot of 10,000 open items reads ~1 MB of index pages, which the OS keeps cached anyway;
    SQLite's own copy (up to 2 MB per connection by default, held as long as the connection) was
    memory the daemon kept for nothing (SPEC §11 P9).
    """
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30, check_same_thread=check_same_thread)
    conn.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
    return conn


_PREFIX_TABLES = frozenset({"vendors", "work_items", "deployments", "enhancements"})


def vendor_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(id, version, name, status, metadata) of live vendors, by name."""
    return conn.execute(
        "SELECT id, version, name, status, metadata FROM vendors WHERE deleted_at IS NULL "
        "ORDER BY name COLLATE NOCASE, id"
    ).fetchall()


def deployment_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(id, version, timestamp, metadata, vendor_ids, work_item_ids) of every deployment, newest first."""
    return conn.execute(
        "SELECT id, version, timestamp, metadata, vendor_ids, work_item_ids FROM deployments "
        "ORDER BY timestamp DESC, id DESC"
    ).fetchall()


def enhancement_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(id, version, title, priority, target_quarter, status) of live enhancements, oldest first."""
    return conn.execute(
        "SELECT id, version, title, priority, target_quarter, status FROM enhancements "
        "WHERE deleted_at IS NULL ORDER BY created_at, id"
    ).fetchall()


def open_conflict_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(id, entity, entity_id, kind, fields) of unresolved conflicts, oldest first."""
    return conn.execute(
        "SELECT id, entity, entity_id, kind, fields FROM conflicts WHERE resolved_at IS NULL ORDER BY detected_at, id"
    ).fetchall()


# Everything a line shows, in display order, all in the work_items_open index (no table reads).
_ITEM_COLUMNS = "id, version, parent_id, item_type, title, status, priority"
_LIVE = "deleted_at IS NULL AND archived_at IS NULL"
_OPEN = f"FROM work_items INDEXED BY work_items_open WHERE {_LIVE} AND status != 'completed'"
_ORDER = "ORDER BY depth, created_at, id"
OPEN_ITEMS_SQL = f"SELECT {_ITEM_COLUMNS} {_OPEN} {_ORDER}"


def work_item_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Live items that are not completed, plus the completed ancestors that hold them in the tree.

    Completed work leaves the file (as it leaves a to-do list) until something under it is still
    open; otherwise a long-lived project's file would grow with every item ever finished.
    Columns: id, version, parent_id, item_type, title, status, priority; sorted by depth,
    created_at, id. The open items come from the partial ``work_items_open`` index alone, in that
    order (SPEC §11 P8: 10,000 open of 100,000 items without 10,000 scattered row reads).
    """
    rows = conn.execute(OPEN_ITEMS_SQL).fetchall()
    have = {r[0] for r in rows}
    missing = {r[2] for r in rows if r[2] is not None and r[2] not in have}
    ancestors: list[tuple[Any, ...]] = []
    while missing:
        batch = list(missing)
        found: list[tuple[Any, ...]] = []
        for i in range(0, len(batch), 500):
            chunk = batch[i : i + 500]
            found += conn.execute(
                f"SELECT depth, created_at, {_ITEM_COLUMNS} FROM work_items "
                f"WHERE {_LIVE} AND id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        ancestors += found
        have.update(r[2] for r in found)
        missing = {r[4] for r in found if r[4] is not None and r[4] not in have}
    if not ancestors:
        return rows
    # Only now the open items' sort keys (same index, same order): most stores need no merge.
    keys = conn.execute(f"SELECT depth, created_at, id {_OPEN} {_ORDER}").fetchall()
    keyed = [(k, r) for k, r in zip(keys, rows, strict=True)]
    keyed += [((a[0], a[1], a[2]), a[2:]) for a in ancestors]
    keyed.sort(key=itemgetter(0))  # two sorted runs: timsort merges them in linear time
    return [r for _, r in keyed]


def session_texts(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """id → (description, metadata) of these sessions: only sessions show them, so only they are read."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for ident, description, metadata in conn.execute(
            f"SELECT id, description, metadata FROM work_items WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ):
            out[ident] = (description, metadata)
    return out


def ids_with_prefix(conn: sqlite3.Connection, table: str, prefix: str, limit: int = 2) -> list[str]:
    """Up to ``limit`` ids in ``table`` (deleted rows included) that start with ``prefix``."""
    if table not in _PREFIX_TABLES:
        raise ValueError(f"not a mirrored table: {table!r}")
    rows = conn.execute(f"SELECT id FROM {table} WHERE id >= ? AND id < ? LIMIT ?", (prefix, prefix + "\x7f", limit))
    return [str(r[0]) for r in rows]
