"""Read-only store checks for ``statusd doctor`` (the connection is the caller's, opened read-only)."""

from __future__ import annotations

import sqlite3


def integrity_verdict(conn: sqlite3.Connection) -> str:
    """SQLite's ``integrity_check`` answer: ``ok`` or the first problem found."""
    return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def refused_outbox_count(conn: sqlite3.Connection) -> int:
    """Queued operations the hub has answered with an error at least once."""
    return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL").fetchone()[0])
