"""Run an import through the store: short chunks, one small "done" step, or a rollback.

``apply_plan(store, ctx, plan, options)`` is the one entry point (the daemon's ``import_tasks``,
the CLI without a daemon, tests). The chunks are transactions of their own on the store's FIFO
writer, so another client's write waits for one chunk, never for the whole import
(docs/decisions.md, 2026-11-30). A dry run imports into a private in-memory copy of the store and
discards it: the writer never sees it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import anyio

from statusd.store import Store, WriteContext, import_runs
from statusd.sync.importers.apply import Importer, Options
from statusd.sync.importers.plan import Plan

log = logging.getLogger(__name__)

# Records per writer transaction, so that one chunk with its commit stays far below the 50 ms a
# waiting client can afford (measured: docs/decisions.md, 2026-11-30 and 2026-12-01).
ITEMS_PER_CHUNK = 12
EDGES_PER_CHUNK = 15
GONE_PER_CHUNK = 50
# With no daemon (``statusd import`` holding the store itself) nobody else can be waiting:
# chunks this many times larger, for fewer commits.
ALONE_SCALE = 20

T = TypeVar("T")


def _chunks(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


async def apply_plan(
    store: Store, ctx: WriteContext, plan: Plan, options: Options, *, alone: bool = False
) -> dict[str, Any]:
    """Import ``plan``: all of it, or (on any failure or cancellation) nothing. ``ctx`` names the
    caller and collects the warnings; each chunk gets a context of its own. ``alone``: no other
    writer can be waiting (the CLI without a daemon), so chunks are larger."""
    if options.dry_run:
        return await store.read_off_loop(_dry_run, plan, options, ctx.actor, store.machine, store.clock())
    return await _apply(store, ctx, plan, options, ALONE_SCALE if alone else 1)


async def _apply(store: Store, ctx: WriteContext, plan: Plan, options: Options, scale: int) -> dict[str, Any]:
    run_id = await store.write(import_runs.begin, _chunk_ctx(ctx), plan.source, plan.path)
    imp = Importer(plan, options, run_id)
    changed: set[str] = set()
    try:
        await store.read_off_loop(imp.locate)
        for items in _chunks(plan.items, ITEMS_PER_CHUNK * scale):
            await _step(store, ctx, imp.items_chunk, items, changed)
        if plan.edges:
            await store.read_off_loop(imp.read_graph)
            for edges in _chunks(plan.edges, EDGES_PER_CHUNK * scale):
                await _step(store, ctx, imp.edges_chunk, edges, changed)
        for gone in _chunks(plan.gone, GONE_PER_CHUNK * scale):
            await _step(store, ctx, imp.gone_chunk, gone, changed)
        done_ctx = _chunk_ctx(ctx)
        done_ctx.changed_entities.update(changed)
        await store.write(import_runs.finish, done_ctx, run_id)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await rollback(store, ctx.actor, run_id, _why(exc))
        raise
    try:
        await forget(store, run_id)
    except Exception:  # the journal of a finished run guards nothing; the next start prunes it
        log.exception("could not prune the journal of import run %s", run_id)
    return imp.result()


async def _step(store: Store, ctx: WriteContext, body: Any, chunk: Sequence[Any], changed: set[str]) -> None:
    """One chunk. The store's listeners (mirror, replicator, subscriptions) hear of the run once,
    when it is done: the chunk's changed entities are collected here instead."""

    def quiet(conn: sqlite3.Connection, chunk_ctx: WriteContext, part: Sequence[Any]) -> None:
        body(conn, chunk_ctx, part)
        changed.update(chunk_ctx.changed_entities)
        chunk_ctx.changed_entities.clear()

    chunk_ctx = _chunk_ctx(ctx)
    chunk_ctx.durable = False  # the run's one durable commit is 'done' (see WriteContext.durable)
    await store.write(quiet, chunk_ctx, chunk)
    for warning in chunk_ctx.warnings:
        if warning not in ctx.warnings:
            ctx.warnings.append(warning)


def _chunk_ctx(ctx: WriteContext) -> WriteContext:
    return WriteContext(actor=ctx.actor, via="migration", machine=ctx.machine)


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


async def rollback(store: Store, actor: str, run_id: str, reason: str) -> None:
    """Undo a run from its journal, in chunks (other writers are served between them)."""
    log.warning("import run %s failed (%s); rolling it back", run_id, reason)
    try:
        await store.write(import_runs.mark_rolling_back, WriteContext(actor=actor, via="migration"), run_id, reason)
        while await store.write(import_runs.rollback_step, WriteContext(actor=actor, via="migration"), run_id):
            pass
    except Exception:
        # Left 'rolling_back': its rows stay held (nothing leaves, nothing builds on them) and the
        # next start of the store finishes the rollback.
        log.exception("rolling back import run %s failed; the next start finishes it", run_id)


async def forget(store: Store, run_id: str) -> None:
    while await store.write(import_runs.prune_step, WriteContext(actor="statusd", via="migration"), run_id):
        pass


def _dry_run(
    conn: sqlite3.Connection, plan: Plan, options: Options, actor: str, machine: str, now: str
) -> dict[str, Any]:
    """The import against a private in-memory copy of the store (a snapshot of ``conn``), discarded."""
    copy = sqlite3.connect(":memory:")
    try:
        conn.backup(copy)
        copy.execute("BEGIN")
        ctx = WriteContext(actor=actor, via="migration", machine=machine, now=now)
        run_id = import_runs.begin(copy, ctx, plan.source, plan.path, exclusive=False)
        imp = Importer(plan, options, run_id)
        imp.locate(copy)
        imp.items_chunk(copy, ctx, plan.items)
        imp.read_graph(copy)
        imp.edges_chunk(copy, ctx, plan.edges)
        imp.gone_chunk(copy, ctx, plan.gone)
        return imp.result()
    finally:
        copy.close()
