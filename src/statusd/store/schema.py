"""Versioned SQLite schema: named, ordered migrations recorded in ``schema_migrations``.

A migration is a function of one connection run inside the start-up transaction. Append new
migrations to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import secrets
import socket
import sqlite3
from collections.abc import Callable

from statusd.errors import StoreTooNewError
from statusd.models import now_iso

Migration = tuple[str, Callable[[sqlite3.Connection], None]]

_AUDIT = """
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
"""


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the surrounding migration transaction, so run statements singly.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _initial(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

        CREATE TABLE work_items (
            id TEXT PRIMARY KEY,
            item_type TEXT NOT NULL,
            title TEXT NOT NULL,
            description TEXT,
            status TEXT NOT NULL,
            priority TEXT NOT NULL,
            parent_id TEXT,
            depth INTEGER NOT NULL DEFAULT 0,
            branch_name TEXT,
            commit_hash TEXT,
            pr_number INTEGER,
            metadata TEXT NOT NULL DEFAULT '{{}}',
            claimed_by TEXT,
            claim_expires_at TEXT,
            deleted_at TEXT,
            archived_at TEXT,
            {_AUDIT}
        );
        CREATE INDEX work_items_parent ON work_items(parent_id);
        CREATE INDEX work_items_live ON work_items(archived_at, deleted_at, status);
        CREATE INDEX work_items_created ON work_items(created_at, id);

        CREATE TABLE dependencies (
            id TEXT PRIMARY KEY,
            work_item_id TEXT NOT NULL,
            depends_on_id TEXT NOT NULL,
            dependency_type TEXT NOT NULL,
            deleted_at TEXT,
            {_AUDIT}
        );
        CREATE UNIQUE INDEX dependencies_edge ON dependencies(work_item_id, depends_on_id, dependency_type);
        CREATE INDEX dependencies_target ON dependencies(depends_on_id);

        CREATE TABLE vendors (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            metadata TEXT NOT NULL,
            deleted_at TEXT,
            {_AUDIT}
        );
        CREATE UNIQUE INDEX vendors_name ON vendors(name COLLATE NOCASE);

        CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            timestamp TEXT NOT NULL,
            metadata TEXT NOT NULL,
            vendor_ids TEXT NOT NULL DEFAULT '[]',
            work_item_ids TEXT NOT NULL DEFAULT '[]',
            {_AUDIT}
        );
        CREATE INDEX deployments_time ON deployments(timestamp, id);
        CREATE TABLE deployment_links (
            deployment_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            target_id TEXT NOT NULL,
            PRIMARY KEY (deployment_id, kind, target_id)
        );
        CREATE INDEX deployment_links_target ON deployment_links(kind, target_id);

        CREATE TABLE enhancements (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT,
            priority TEXT NOT NULL,
            status TEXT NOT NULL,
            target_quarter TEXT,
            requires_constitutional_principles TEXT NOT NULL DEFAULT '[]',
            depends_on TEXT NOT NULL DEFAULT '[]',
            deleted_at TEXT,
            {_AUDIT}
        );

        CREATE TABLE configuration (
            id TEXT PRIMARY KEY,
            active_context_type TEXT NOT NULL,
            current_session_id TEXT,
            git_branch TEXT,
            git_head_commit TEXT,
            default_token_budget INTEGER NOT NULL,
            {_AUDIT}
        );

        CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            changes TEXT NOT NULL,
            actor TEXT NOT NULL,
            at TEXT NOT NULL,
            machine TEXT NOT NULL,
            via TEXT NOT NULL,
            op_id TEXT
        );
        CREATE INDEX history_entity ON history(entity_id, version);

        -- The replication queue (SPEC §5.2): written in the same transaction as the change it
        -- describes, only when replication is configured.
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            op_id TEXT NOT NULL UNIQUE,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            base_version INTEGER NOT NULL,
            new_version INTEGER NOT NULL,
            changes TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        );
        CREATE INDEX outbox_entity ON outbox(entity_id, seq);
        """,
    )


def _replication(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE conflicts (
            id TEXT PRIMARY KEY,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            fields TEXT NOT NULL,
            local_op TEXT NOT NULL,
            remote_version INTEGER,
            detected_at TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by TEXT,
            resolution TEXT
        );
        CREATE INDEX conflicts_open ON conflicts(resolved_at, entity_id)
        """,
    )


def _covering_live_index(conn: sqlite3.Connection) -> None:
    # Status counts at 100,000 items read this index alone instead of 55,000 table rows (45 → 5 ms).
    _run_script(
        conn,
        """
        DROP INDEX work_items_live;
        CREATE INDEX work_items_live ON work_items(archived_at, deleted_at, status, item_type, priority)
        """,
    )


def _replication_indexes(conn: sqlite3.Connection) -> None:
    # Own-operation checks look history up by op id. A vendor that lost a duplicate-name race stays
    # (hidden, soft-deleted) beside the winner, so only live names need to be unique.
    _run_script(
        conn,
        """
        CREATE INDEX history_op ON history(op_id) WHERE op_id IS NOT NULL;
        DROP INDEX vendors_name;
        CREATE UNIQUE INDEX vendors_name ON vendors(name COLLATE NOCASE) WHERE deleted_at IS NULL
        """,
    )


def _machine_id(conn: sqlite3.Connection) -> None:
    # History and the hub record where each change was made (SPEC §2.7). The hostname alone cannot
    # tell two daemons on one host apart, so each store gets its own id once and keeps it.
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('machine_id', ?)", (new_machine_id(),))


def new_machine_id() -> str:
    """``<hostname>:<8 random hex digits>``: readable, and unique per store."""
    return f"{socket.gethostname()[:40]}:{secrets.token_hex(4)}"


def _conflict_reasons(conn: sqlite3.Connection) -> None:
    # Operations the hub refuses for good are kept as conflict records of kind 'rejected'; the
    # reason says why (the hub's error), as cycle conflicts say which cycle they would close.
    conn.execute("ALTER TABLE conflicts ADD COLUMN reason TEXT")


def _outbox_actor(conn: sqlite3.Connection) -> None:
    # A push names who made each operation and how; reading it from history took a join per push.
    # ``asserts``: the values a check (a confirmed write that changed nothing) expects the hub to hold.
    _run_script(
        conn,
        """
        ALTER TABLE outbox ADD COLUMN actor TEXT NOT NULL DEFAULT 'unknown';
        ALTER TABLE outbox ADD COLUMN via TEXT NOT NULL DEFAULT 'tool';
        ALTER TABLE outbox ADD COLUMN asserts TEXT;
        UPDATE outbox SET
            actor = coalesce((SELECT h.actor FROM history h WHERE h.op_id = outbox.op_id), 'unknown'),
            via = coalesce((SELECT h.via FROM history h WHERE h.op_id = outbox.op_id), 'tool')
        """,
    )


# Held by a running import (docs/decisions.md, 2026-11-30): an entity the run created or changed,
# while the run is neither done nor rolled back. The import's own chunk transactions set the meta
# row ``import_writing`` (never committed), so these guards let only them through.
_HELD = (
    "EXISTS (SELECT 1 FROM import_run_rows j JOIN import_runs r ON r.id = j.run_id "
    "WHERE j.entity_id = {x} AND r.state IN ('running', 'rolling_back'))"
)
_NOT_IMPORTING = "NOT EXISTS (SELECT 1 FROM meta WHERE key = 'import_writing')"


def _guard(name: str, timing: str, table: str, condition: str, message: str) -> str:
    """An import guard: refuse the change (``unavailable`` / ``import_in_progress``) when ``condition``."""
    return (
        f"CREATE TRIGGER {name} {timing} ON {table} WHEN {condition} "
        f"BEGIN SELECT RAISE(ABORT, 'statusd:import_in_progress:{message}'); END"
    )


def _import_runs(conn: sqlite3.Connection) -> None:
    # An import commits in short chunks so other writers are served between them; this journal
    # (every entity a run created, the pre-image of every row it changed) lets it still be all or
    # nothing: a failed, cancelled or crashed run is rolled back from it. Outbox rows carry their
    # run, and the replicator holds them back until the run is done.
    _run_script(
        conn,
        """
        CREATE TABLE import_runs (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            path TEXT NOT NULL,
            actor TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            state TEXT NOT NULL,
            reason TEXT
        );
        CREATE INDEX import_runs_state ON import_runs(state) WHERE state != 'done' AND state != 'rolled_back';
        CREATE TABLE import_run_rows (
            run_id TEXT NOT NULL,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            pre_image TEXT,
            PRIMARY KEY (entity_id, run_id)
        );
        CREATE INDEX import_run_rows_run ON import_run_rows(run_id);
        ALTER TABLE outbox ADD COLUMN run_id TEXT;
        CREATE INDEX outbox_run ON outbox(run_id, seq)
        """,
    )
    for name, timing, table, when, message in _GUARDS:
        conn.execute(_guard(name, timing, table, f"({when}) AND {_NOT_IMPORTING}", message))


_held = _HELD.format
_GUARDS = (
    ("import_guard_item_update", "BEFORE UPDATE", "work_items",
     f"{_held(x='OLD.id')} OR (NEW.parent_id IS NOT OLD.parent_id AND {_held(x='NEW.parent_id')})", "work_item"),
    ("import_guard_item_delete", "BEFORE DELETE", "work_items", _held(x="OLD.id"), "work_item"),
    ("import_guard_item_child", "BEFORE INSERT", "work_items",
     f"NEW.parent_id IS NOT NULL AND {_held(x='NEW.parent_id')}", "parent"),
    ("import_guard_edge_insert", "BEFORE INSERT", "dependencies",
     f"{_held(x='NEW.work_item_id')} OR {_held(x='NEW.depends_on_id')}", "dependency"),
    ("import_guard_edge_update", "BEFORE UPDATE", "dependencies",
     f"{_held(x='OLD.id')} OR {_held(x='NEW.work_item_id')} OR {_held(x='NEW.depends_on_id')}", "dependency"),
    ("import_guard_edge_delete", "BEFORE DELETE", "dependencies", _held(x="OLD.id"), "dependency"),
    ("import_guard_conflict", "BEFORE UPDATE", "conflicts", _held(x="OLD.id"), "conflict"),
)  # fmt: skip


def _open_items_index(conn: sqlite3.Connection) -> None:
    # The mirror shows the open items (SPEC §9): at 100,000 items, 10,000 open, reading them through
    # this index alone, already in display order, replaces 10,000 scattered table-row reads (SPEC §11
    # P8). Partial: completed and archived items, the bulk of an old store, add nothing to it.
    _run_script(
        conn,
        """
        CREATE INDEX work_items_open ON work_items(
            depth, created_at, id, version, parent_id, item_type, title, status, priority, deleted_at, archived_at
        ) WHERE deleted_at IS NULL AND archived_at IS NULL AND status != 'completed'
        """,
    )


_RUN_ACTIVE = "EXISTS (SELECT 1 FROM import_runs WHERE state != 'done' AND state != 'rolled_back')"


def _import_guards_first(conn: sqlite3.Connection) -> None:
    # The same guards, asking first the cheapest questions: is any import run active (no, for
    # nearly every write: one look-up in an empty partial index), and is this writer an import chunk
    # (then its own rows, all held by its run, need no journal look-ups: ~0.2 s of a 10,000-record
    # import). Only other writers during a run pay the journal look-ups (docs/decisions.md 2026-12-01).
    for name, timing, table, when, message in _GUARDS:
        conn.execute(f"DROP TRIGGER {name}")
        conn.execute(_guard(name, timing, table, f"{_RUN_ACTIVE} AND {_NOT_IMPORTING} AND ({when})", message))


MIGRATIONS: list[Migration] = [
    ("0001_initial", _initial),
    ("0002_replication", _replication),
    ("0003_covering_live_index", _covering_live_index),
    ("0004_replication_indexes", _replication_indexes),
    ("0005_machine_id", _machine_id),
    ("0006_conflict_reasons", _conflict_reasons),
    ("0007_outbox_actor", _outbox_actor),
    ("0008_import_runs", _import_runs),
    ("0009_open_items_index", _open_items_index),
    ("0010_import_guards_first", _import_guards_first),
]

LATEST_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending migration in one transaction; return the names applied."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        have = current_version(conn)
        if have > LATEST_VERSION:
            raise StoreTooNewError(have, LATEST_VERSION)
        applied = []
        for number, (name, step) in enumerate(MIGRATIONS, start=1):
            if number <= have:
                continue
            step(conn)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, now_iso()),
            )
            applied.append(name)
        conn.execute("COMMIT")
        return applied
    except BaseException:
        conn.execute("ROLLBACK")
        raise
