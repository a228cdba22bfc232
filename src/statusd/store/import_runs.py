"""The import run journal: what lets an import commit in chunks and still be all or nothing.

A run (``import_runs``) is ``running`` while its chunks commit, then ``done`` in one one-row
transaction. Every entity a chunk creates, and the pre-image of every row it changes, is recorded
in ``import_run_rows`` in the same transaction as the change. Until the run is done:

* its outbox rows (``outbox.run_id``) are held back from the hub (:mod:`statusd.store.outbox`);
* triggers (schema ``0008_import_runs``) refuse other writers' changes to the entities it holds,
  so a rollback never takes anyone's acknowledged write with it;
* a failure, a cancellation or a crash (a run found ``running`` when the store opens) is undone by
  :func:`rollback_step` in chunks of its own: created rows, their history and outbox rows are
  deleted, changed rows get their pre-image back. None of it ever left the machine.

Readers see a running import's rows (read-uncommitted for imports; docs/decisions.md 2026-11-30).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from statusd.errors import UnavailableError
from statusd.models import new_id
from statusd.store import entities as ent
from statusd.store.context import WriteContext
from statusd.store.entities import ENTITIES, WORK_ITEM
from statusd.store.packed import packed

log = logging.getLogger(__name__)

ROLLBACK_CHUNK = 200  # journal rows per rollback transaction
PRUNE_CHUNK = 2000  # journal rows of a finished run deleted per transaction
GUARD_KEY = "import_writing"
RUN = "import_run"  # what a run's end tells the store's listeners
CONFLICT_NAME = "conflict"  # journal rows for conflict records (not an entity of their own)


class ImportInProgressError(UnavailableError):
    """Another import is running, or this write touches what a running import holds; retry after it."""


def guard_on(conn: sqlite3.Connection) -> None:
    """Let this transaction (an import chunk) through the import guards; never committed (see guard_off)."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, '1')", (GUARD_KEY,))


def guard_off(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM meta WHERE key = ?", (GUARD_KEY,))


def active(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Runs neither done nor rolled back, oldest first."""
    rows = conn.execute(
        "SELECT id, source, path, actor, started_at, state FROM import_runs "
        "WHERE state != 'done' AND state != 'rolled_back' ORDER BY started_at"
    ).fetchall()
    return [dict(zip(("id", "source", "path", "actor", "started_at", "state"), r, strict=True)) for r in rows]


def describe(run: dict[str, Any]) -> str:
    return f"{run['source']} import of {run['path']} (started {run['started_at']} by {run['actor']})"


def begin(conn: sqlite3.Connection, ctx: WriteContext, source: str, path: str, *, exclusive: bool = True) -> str:
    """Start a run; one at a time (a second would re-create what the first has not finished)."""
    if exclusive:
        running = active(conn)
        if running:
            raise ImportInProgressError(
                f"another import is in progress: {describe(running[0])}; retry after it finishes",
                {"reason": "import_in_progress", "import": running[0]},
            )
    run_id = new_id()
    conn.execute(
        "INSERT INTO import_runs(id, source, path, actor, started_at, state) VALUES (?, ?, ?, ?, ?, 'running')",
        (run_id, source, path, ctx.actor[:100], ctx.now),
    )
    return run_id


def created(conn: sqlite3.Connection, run_id: str, entity: str, ident: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO import_run_rows(run_id, entity, entity_id) VALUES (?, ?, ?)", (run_id, entity, ident)
    )


def created_many(conn: sqlite3.Connection, run_id: str, entity: str, idents: Sequence[str]) -> None:
    """:func:`created` for many rows of one entity, in one statement."""
    if idents:
        conn.execute(
            "INSERT OR IGNORE INTO import_run_rows(run_id, entity, entity_id) SELECT ?, ?, value FROM json_each(?)",
            (run_id, entity, packed(list(idents))),
        )


def changing(conn: sqlite3.Connection, run_id: str, entity: str, row: dict[str, Any]) -> None:
    """Keep the row as it was before the run's first change to it (later changes keep the first)."""
    conn.execute(
        "INSERT OR IGNORE INTO import_run_rows(run_id, entity, entity_id, pre_image) VALUES (?, ?, ?, ?)",
        (run_id, entity, row["id"], ent.dumps(row)),
    )


def finish(conn: sqlite3.Connection, ctx: WriteContext, run_id: str) -> None:
    """The run is done: one row changes, and the held outbox rows become pushable."""
    conn.execute("UPDATE import_runs SET state = 'done', finished_at = ? WHERE id = ?", (ctx.now, run_id))
    ctx.changed_entities.add(RUN)  # the listeners (the mirror held back meanwhile) hear of it now


def mark_rolling_back(conn: sqlite3.Connection, ctx: WriteContext, run_id: str, reason: str) -> None:
    conn.execute(
        "UPDATE import_runs SET state = 'rolling_back', reason = ? WHERE id = ? AND state = 'running'",
        (reason[:500], run_id),
    )


def rollback_step(conn: sqlite3.Connection, ctx: WriteContext, run_id: str, limit: int = ROLLBACK_CHUNK) -> bool:
    """Undo up to ``limit`` journal rows of the run, newest first; True when more remain.

    The last step deletes any outbox row still carrying the run and marks it ``rolled_back``.
    """
    guard_on(conn)
    rows = conn.execute(
        "SELECT rowid, entity, entity_id, pre_image FROM import_run_rows WHERE run_id = ? ORDER BY rowid DESC LIMIT ?",
        (run_id, limit),
    ).fetchall()
    for rowid, entity_name, ident, pre_image in rows:
        if entity_name == CONFLICT_NAME:
            conn.execute("DELETE FROM conflicts WHERE id = ?", (ident,))
        elif pre_image is None:
            entity = ENTITIES[entity_name]
            conn.execute(f"DELETE FROM {entity.table} WHERE id = ?", (ident,))
            conn.execute("DELETE FROM history WHERE entity_id = ?", (ident,))
            conn.execute("DELETE FROM outbox WHERE entity_id = ?", (ident,))
        else:
            _restore(conn, ENTITIES[entity_name], json.loads(pre_image), run_id)
        conn.execute("DELETE FROM import_run_rows WHERE rowid = ?", (rowid,))
        ctx.changed_entities.add(entity_name)  # the mirror re-renders what the run had shown
    more = len(rows) == limit
    if not more:
        conn.execute("DELETE FROM outbox WHERE run_id = ?", (run_id,))
        conn.execute("UPDATE import_runs SET state = 'rolled_back', finished_at = ? WHERE id = ?", (ctx.now, run_id))
        ctx.changed_entities.add(RUN)
    guard_off(conn)
    return more


def _restore(conn: sqlite3.Connection, entity: ent.Entity, row: dict[str, Any], run_id: str) -> None:
    current = None
    if entity is WORK_ITEM:
        current = conn.execute("SELECT depth FROM work_items WHERE id = ?", (row["id"],)).fetchone()
    cols = [c for c in entity.columns if c != "id"]
    conn.execute(
        f"UPDATE {entity.table} SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
        [*(ent.dumps(row[c]) if c in entity.json_fields and row[c] is not None else row[c] for c in cols), row["id"]],
    )
    conn.execute("DELETE FROM history WHERE entity_id = ? AND version > ?", (row["id"], row["version"]))
    conn.execute("DELETE FROM outbox WHERE entity_id = ? AND run_id = ?", (row["id"], run_id))
    if current is not None and current[0] != row["depth"]:  # a move the run made shifted the subtree too
        fix_descendant_depths(conn, row["id"], row["depth"])


def fix_descendant_depths(conn: sqlite3.Connection, ident: str, depth: int) -> None:
    conn.execute(
        """WITH RECURSIVE sub(id, d) AS (
               SELECT id, ? + 1 FROM work_items WHERE parent_id = ?
               UNION ALL SELECT w.id, sub.d + 1 FROM work_items w JOIN sub ON w.parent_id = sub.id WHERE sub.d < 64)
           UPDATE work_items SET depth = (SELECT d FROM sub WHERE sub.id = work_items.id)
           WHERE id IN (SELECT id FROM sub)""",
        (depth, ident),
    )


def prune_step(conn: sqlite3.Connection, ctx: WriteContext, run_id: str, limit: int = PRUNE_CHUNK) -> bool:
    """Forget the journal of a finished run (it guards nothing any more); True when more remain."""
    cur = conn.execute(
        "DELETE FROM import_run_rows WHERE rowid IN (SELECT rowid FROM import_run_rows WHERE run_id = ? LIMIT ?)",
        (run_id, limit),
    )
    return cur.rowcount == limit


def unfinished(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """(runs to roll back, finished runs whose journal is not yet pruned): for the store's start-up."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'import_runs'").fetchone() is None:
        return [], []  # a schema from before the journal (only tests open one)
    to_undo = [str(r["id"]) for r in active(conn)]
    leftover = conn.execute(
        "SELECT DISTINCT j.run_id FROM import_run_rows j JOIN import_runs r ON r.id = j.run_id "
        "WHERE r.state = 'done' OR r.state = 'rolled_back'"
    ).fetchall()
    return to_undo, [str(r[0]) for r in leftover]


def recover(reader: sqlite3.Connection, write: Callable[..., Any], machine: str) -> None:
    """At the store's start-up: roll back every run left unfinished (a crash, kill -9), in chunks,
    and forget the journals of finished runs. ``write`` is ``Store.write_sync``."""
    to_undo, leftover = unfinished(reader)
    for run_id in to_undo:
        log.warning("an import left unfinished (run %s) is being rolled back", run_id)
        ctx = WriteContext(actor="statusd", via="migration", machine=machine)
        write(mark_rolling_back, ctx, run_id, "the process stopped during the import")
        while write(rollback_step, WriteContext(actor="statusd", via="migration", machine=machine), run_id):
            pass
    for run_id in leftover:
        while write(prune_step, WriteContext(actor="statusd", via="migration", machine=machine), run_id):
            pass


def in_progress_error(conn: sqlite3.Connection, message: str) -> ImportInProgressError:
    """The structured error for a write a trigger refused (``message``: the trigger's text)."""
    what = message.rpartition(":")[2] or "entity"
    running = active(conn)
    run = running[0] if running else None
    subject = {
        "work_item": "this work item was created or changed by an import that is still running",
        "parent": "the parent work item was created or changed by an import that is still running",
        "dependency": "a work item of this dependency was created or changed by an import that is still running",
        "conflict": "this conflict was recorded by an import that is still running",
    }.get(what, "an import that is still running holds this entity")
    where = f" ({describe(run)})" if run else ""
    return ImportInProgressError(
        f"{subject}{where}; it cannot be changed until the import finishes (or rolls back): retry after it",
        {"reason": "import_in_progress", "entity": what, "import": run},
    )
