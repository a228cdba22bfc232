"""The markdown mirror at run time (SPEC §9): write the file after changes, import a human's saves.

Writing: every committed store change marks the mirror dirty; a writer task coalesces changes for
``COALESCE_S``, then reads a snapshot and renders it in a worker thread (its own read-only SQLite
connection, so the event loop keeps serving while 10,000 items render), and replaces the file
atomically (temp file, fsync, rename, fsync of the directory) unless the bytes are unchanged.
Writes are spaced at least ``min_gap_s`` apart, so the file trails the store by at most the
configured debounce (300 ms by default) however fast changes come.

Reading: the file's directory is watched (editors save by renaming a temp file over it; swap and
backup files are ignored by name). A save whose hash is one the mirror wrote itself is ignored;
any other is parsed and applied as ordinary writes (:mod:`markdown_import`). A save that does not
parse, or whose changes the store refuses, pauses the mirror: the file is left exactly as the human
wrote it, the line and reason are reported (``summary()``, the log), and the next save that parses
resumes everything. The file is never replaced while it holds a save not yet imported.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import gc
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from statusd.models import now_iso
from statusd.store import Store, WriteContext, import_runs, mirror_snapshot, outbox
from statusd.sync.atomic_write import write_atomically
from statusd.sync.markdown_import import ImportResult
from statusd.sync.markdown_model import DEFAULT_LAYOUT, MARKER, Block, Document, MarkdownParseError
from statusd.sync.markdown_parse import parse
from statusd.sync.markdown_render import render
from statusd.sync.mirror_base import PackedBase, apply_packed, pack, unpack
from statusd.sync.mirror_state import Rendered, gc_paused, rebase, sid_lists, snapshot

log = logging.getLogger(__name__)

COALESCE_S = 0.03
STABLE_S = 0.05  # a save must stay unchanged this long before it is read (partial writes)
MAX_FILE_BYTES = 16 * 1024 * 1024
COLLECT_AFTER_BYTES = 256 * 1024  # ~4,000 open items
ChangeSource = Callable[[Path], AsyncIterator[set[str]]]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def watch_directory(directory: Path) -> AsyncIterator[set[str]]:
    """Yield sets of changed file names in ``directory`` (watchfiles; rename-saves included)."""
    import watchfiles

    logging.getLogger("watchfiles.main").setLevel(logging.WARNING)  # it logs every batch at INFO

    # step: how often the Rust side wakes while idle (50 ms: cheap, not a busy poll); debounce groups an
    # editor's temp-file + rename into one batch.
    async for changes in watchfiles.awatch(directory, debounce=50, step=50, recursive=False, rust_timeout=1000):
        yield {Path(p).name for _, p in changes}


def render_store(store_path: Path, banner: str | None = None, layout: tuple[Block, ...] | None = None) -> str:
    """Render a store file's current state (opens its own read-only connection; any thread)."""
    with gc_paused():  # the render, too, makes only acyclic objects (SPEC §11 P8)
        conn = mirror_snapshot.connect(store_path)
        try:
            conn.execute("BEGIN")
            rendered = snapshot(conn, banner, with_ids=False)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return render(rendered.state, layout)


async def markdown_for(store_path: Path, mirror: Mirror | None, banner: str | None) -> str:
    """The §9 document for ``generate_full_status``: rendered off the event loop, in the mirror's layout."""
    if mirror is not None:
        return await asyncio.to_thread(mirror.render_report, banner)
    return await asyncio.to_thread(render_store, store_path, banner)


class Mirror:
    """``await mirror.start()`` then run ``mirror.run()`` as a task; ``await mirror.close()`` flushes."""

    def __init__(
        self,
        store: Store,
        path: Path,
        *,
        debounce_ms: int = 300,
        banner: Callable[[], str | None] = lambda: None,
        changes: ChangeSource | None = None,
        actor: str = "markdown",
        follow_banner: bool = False,
        collect_after_render: bool = False,
    ) -> None:
        self.store = store
        self.path = path
        self.banner = banner
        self.min_gap_s = max(0.0, debounce_ms / 1000 - COALESCE_S) / 3
        self.changes = changes or watch_directory
        self.actor = actor
        self.follow_banner = follow_banner  # replicated: the banner can change with no store change
        # The daemon owns the process (not a test's event loop): after a large render, a full
        # collection empties the interpreter's free lists (thousands of tuples, dicts and lists the
        # snapshot just freed), which otherwise hold the render's allocator arenas (SPEC §11 P9).
        self.collect_after_render = collect_after_render
        self.state = "starting"  # running | paused | failed
        self.reason: str | None = None
        self.error: dict[str, Any] | None = None
        self.layout: tuple[Block, ...] = DEFAULT_LAYOUT
        self.base: PackedBase | None = None  # the last render, packed (mirror_base)
        self.written_hashes: list[str] = []  # the last few files this mirror wrote (own-write recognition)
        self.imported_hash: str | None = None
        self.last_write_at: str | None = None
        self.last_import_at: str | None = None
        self.last_import: dict[str, Any] | None = None
        self.writes = 0
        self.imports = 0
        self.written = asyncio.Event()  # set after each write or confirmed no-op (tests, flush)
        self._dirty = asyncio.Event()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._conn_generation = 0
        self._last_banner: str | None = None
        self.pending: dict[tuple[str, str, str | None], list[str]] = {}  # see ImportResult.created
        self.foreign = False  # the file was there before statusd (SPEC §8 first start)
        # A copy of the last file written, beside the store: after a restart, the base a human's edit
        # made while the daemon was down is compared with (the store may be ahead of the file).
        self.shadow = store.path.with_name(store.path.name + ".mirror-last.md")
        # The render about to be written, kept before the file is replaced and renamed over the
        # shadow after: a crash between leaves it naming the file as statusd's own write.
        self.shadow_next = store.path.with_name(store.path.name + ".mirror-next.md")
        self._shadow_hash: str | None = None
        self._gen = 0  # bumped by every import: a render snapshotted before one is stale
        self.last_migration: dict[str, Any] | None = None

    # --- state ---------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self.state == "running"

    def summary(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "state": self.state,
            "path": str(self.path),
            "reason": self.reason,
            "error": self.error,
            "last_write_at": self.last_write_at,
            "last_import_at": self.last_import_at,
            "last_import": self.last_import,
            "writes": self.writes,
            "imports": self.imports,
            "first_start_migration": None
            if self.last_migration is None
            else {k: self.last_migration.get(k) for k in ("success", "errors", "backup", "migration_warnings")},
        }

    def pause(self, reason: str, error: dict[str, Any] | None = None) -> None:
        if (self.state, self.reason) != ("paused", reason):
            log.warning("markdown mirror paused: %s", reason)
        self.state, self.reason, self.error = "paused", reason, error

    def changed(self, ctx: WriteContext | None = None) -> None:
        """Store listener: something committed, so the file is out of date."""
        self._dirty.set()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, adopt: bool = False, hub_rebuilt: bool = False) -> None:
        """Take over the file: import edits made while the daemon was down, or write a fresh one.

        The store is exactly as it was when the last daemon flushed the file on shutdown, so its
        snapshot now is the base that file was rendered from. With ``adopt`` (the store was just
        rebuilt, from this very file or from Postgres) the file is taken as read, not imported. With
        ``hub_rebuilt`` a file listing entities the rebuilt store lacks (writes that never reached
        Postgres) is left untouched and the mirror paused: a render would drop them.
        """
        self.state, self.reason, self.error = "starting", None, None
        self._conn = self._connect()
        self.store.add_listener(self.changed)
        self._last_banner = banner = self.banner()
        self.base = await asyncio.to_thread(self._snapshot, banner)
        data = self._read()
        if data is not None:
            if not data.removeprefix(codecs.BOM_UTF8).startswith(MARKER.encode()):
                self.foreign = True  # a file statusd did not write (SPEC §8): migrate it or leave it alone
                await self._migrate_foreign()
                return
            try:
                doc = parse(data.decode("utf-8"))
            except (UnicodeDecodeError, MarkdownParseError) as exc:
                self.pause(f"{self.path.name} does not parse ({exc}); fix it and save to resume", _error(exc))
                return
            if hub_rebuilt and (missing := await asyncio.to_thread(self._unknown_entries, doc)):
                self.pause(
                    f"{self.path.name} lists {missing} entr{'y' if missing == 1 else 'ies'} the store rebuilt "
                    f"from Postgres does not have; left untouched. Run 'statusd migrate {self.path}' to import "
                    "them, or delete those lines and save"
                )
                return
            self.layout = doc.layout
            shadow = None if adopt else await asyncio.to_thread(self._last_written, data)
            if shadow == data:
                pass  # the file is exactly what the last daemon wrote: nothing to import
            elif self.store.meta(IMPORTED_SAVE) == _sha(data):
                pass  # a save the last daemon imported but had not rewritten yet: the store holds it
            elif not adopt and await asyncio.to_thread(_render_base, self.base, doc.layout) != data:
                if shadow is not None:
                    with contextlib.suppress(UnicodeDecodeError, MarkdownParseError):
                        rebased = parse(shadow.decode("utf-8"))
                        self.base = await asyncio.to_thread(lambda: pack(self._rebase(rebased)))
                self.state = "running"
                self.imported_hash = None
                await self.import_file()
            self.imported_hash = _sha(data)
        if self.state == "paused":
            self._dirty.set()
            return
        self.state = "running"
        await self._first_render()

    async def _first_render(self) -> None:
        """Write the file now, before the daemon serves (the writer task would, moments later).

        At 100,000 items a render's short-lived objects fill ~10 MB of the allocator's arenas; while
        clients' first calls build the SDK's long-lived caches beside them, the arenas can never be
        returned (SPEC §11 P9). Before the socket serves, nothing else allocates.
        """
        if self.store.read(import_runs.active):
            self._dirty.set()  # the writer task waits for the import to finish, as for any change
            return
        self._dirty.clear()
        try:
            self._after_render(await asyncio.to_thread(self._render_and_write))
        except OSError:
            self._dirty.set()  # the writer task reports it (state "failed") and retries

    async def _migrate_foreign(self) -> None:
        from statusd.errors import StatusdError
        from statusd.sync.migrate import migrate_path

        name = self.path.name
        try:
            result = await migrate_path(self.store, self.path, mirror=self, actor="statusd-first-start")
        except StatusdError as exc:
            self.pause(f"{name} was not written by statusd and cannot be migrated ({exc.message}); left untouched")
            return
        self.last_migration = result
        if not result["success"]:
            failed = ", ".join(e for e in result["errors"] if e != "validation_failed")
            self.pause(
                f"{name} was not written by statusd and its migration failed its checks ({failed}); left untouched. "
                f"Fix it and run 'statusd migrate {self.path}'"
            )
        else:
            log.info("migrated %s into the store (backup at %s)", name, result.get("backup"))

    async def adopt(self, layout: tuple[Block, ...], original: bytes) -> None:
        """Take over a migrated file: its remaining lines become the layout, and it may be rewritten."""
        self.layout = layout
        self.foreign = False
        self.imported_hash = _sha(original)
        self.base = await asyncio.to_thread(self._snapshot, self.banner())
        self._resume()

    def _unknown_entries(self, doc: Document) -> int:
        """How many of the file's tagged lines name no entity in the store."""
        known = self._rebase(doc).ids
        return sum(len([s for s in sids if s not in known.get(k, {})]) for k, sids in sid_lists(doc.state).items())

    def _rebase(self, doc: Document) -> Rendered:
        with self._lock:
            conn = self._current_connection()
            assert conn is not None
            conn.execute("BEGIN")
            try:
                return rebase(conn, doc.state)
            finally:
                conn.execute("COMMIT")

    def _snapshot(self, banner: str | None) -> PackedBase:
        with self._lock:
            conn = self._current_connection()
            assert conn is not None
            conn.execute("BEGIN")
            try:
                rendered = snapshot(conn, banner)
            finally:
                conn.execute("COMMIT")
            base = pack(rendered)
            del rendered
            self._release(len(base))
            return base

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._writer())
            tg.create_task(self._watcher())
            if self.follow_banner:
                tg.create_task(self._banner_watch())

    async def flush(self) -> None:
        """Write now if anything is pending (shutdown)."""
        if self._dirty.is_set() and self.healthy:
            self._dirty.clear()
            self._after_render(await asyncio.to_thread(self._render_and_write))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
        # A render or rebase may still run on a worker thread (its task was cancelled, the thread was
        # not): closing the connection under it crashes the process, so close it under their lock.
        await asyncio.to_thread(self._close_connection)

    def _connect(self) -> sqlite3.Connection:
        self._conn_generation = self.store.file_generation
        return mirror_snapshot.connect(self.store.path, check_same_thread=False)

    def _current_connection(self) -> sqlite3.Connection | None:
        """The read connection, reopened when the store file was written back (caller holds the lock)."""
        if self._conn is not None and self._conn_generation != self.store.file_generation:
            self._conn.close()  # it reads the vanished file, which no write reaches any more
            self._conn = self._connect()
        return self._conn

    def _close_connection(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- writing -----------------------------------------------------------------------------

    async def _writer(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(COALESCE_S)
            if self.store.read(import_runs.active):
                # An import commits in chunks: the file shows it once it is done (or rolled back),
                # never half of it, and is not re-rendered for every chunk (decisions, 2026-11-30).
                # The run's last commit tells the listeners again.
                self._dirty.clear()
                continue
            if not self.healthy:
                self._dirty.clear()
                await self._wait_healthy()
                continue
            self._dirty.clear()
            started = time.monotonic()
            try:
                self._after_render(await asyncio.to_thread(self._render_and_write))
            except OSError as exc:
                self.state, self.reason = "failed", f"cannot write {self.path}: {exc.strerror or exc}"
                log.error("markdown mirror: %s", self.reason)
                self._dirty.set()
                await asyncio.sleep(1.0)  # retry (disk full, permissions) without spinning
                if self.state == "failed":
                    self.state = "running"
            await asyncio.sleep(max(0.0, self.min_gap_s - (time.monotonic() - started)))

    def _after_render(self, outcome: str) -> None:
        """Loop-side follow-up of a render (asyncio events are not thread-safe)."""
        if outcome == "stale":
            self._dirty.set()
        elif outcome in ("written", "same"):
            self.written.set()

    async def _wait_healthy(self) -> None:
        while not self.healthy:
            await self._dirty.wait()
            self._dirty.clear()
        self._dirty.set()

    def _render_and_write(self) -> str:
        """Render and write (worker thread); say what happened: written, same, stale or skipped."""
        with self._lock:
            conn = self._current_connection()
            if conn is None:
                return "skipped"
            banner = self.banner()
            gen = self._gen
            conn.execute("BEGIN")
            try:
                rendered = snapshot(conn, banner)
            finally:
                conn.execute("COMMIT")
            if not self.healthy:
                return "skipped"
            data = render(rendered.state, self.layout).encode("utf-8")
            base = pack(rendered)
            del rendered  # its ~100,000 small objects go before anything long-lived is made (mirror_base)
            self._release(len(data))
            current = self._read()
            if current is not None:
                digest = _sha(current)
                if not self._is_last_write(digest) and digest != self.imported_hash:
                    # A save not imported yet (an older render of ours put back is one too): the watcher
                    # reads it first, never overwrite it.
                    return "skipped"
            if gen != self._gen:
                return "stale"  # an import landed since the snapshot: render again, never write the old state
            if current == data:
                self._keep_shadow(data, digest)
                self._wrote(base, banner, digest, wrote=False)
                return "same"
            write_atomically(self.shadow_next, data, private=True)  # before the file: see _last_written
            write_atomically(self.path, data)
            digest = _sha(data)
            self._promote_shadow(digest)
            self._wrote(base, banner, digest, wrote=True)
            return "written"

    def render_report(self, banner: str | None) -> str:
        """``render_store`` in this mirror's layout, taking turns with its renders (worker thread).

        Two 10,000-item snapshots at once (a report while the file is rendered) doubled the memory
        the process peaked at, and kept (SPEC §11 P9); one at a time costs the same CPU time.
        """
        with self._lock:
            text = render_store(self.store.path, banner, self.layout)
            self._release(len(text))
            return text

    def _release(self, size: int) -> None:
        if self.collect_after_render and size >= COLLECT_AFTER_BYTES:
            gc.collect()  # a few ms: the daemon keeps its start-up objects out of collections (gc.freeze)

    def _last_written(self, data: bytes) -> bytes | None:
        """What the last daemon wrote to the file, for a start that finds ``data`` there.

        The shadow, or the render a crash caught between replacing the file and renaming it over the
        shadow (then the file may be that render: taking the older shadow as the base would read the
        render's newer lines as a human's additions and create them again). A pending render the file
        does not hold is kept as a base only if the file is closer to it (edited after that write).
        """
        shadow = _read_file(self.shadow)
        pending = _read_file(self.shadow_next)
        if pending is None:
            return shadow
        with contextlib.suppress(OSError):
            if pending == data or shadow is None or _closeness(data, pending) > _closeness(data, shadow):
                os.replace(self.shadow_next, self.shadow)
                return pending
            self.shadow_next.unlink()  # never reached the file
        return shadow

    def _promote_shadow(self, digest: str) -> None:
        os.replace(self.shadow_next, self.shadow)
        self._shadow_hash = digest

    def _keep_shadow(self, data: bytes, digest: str) -> None:
        if self._shadow_hash != digest:
            write_atomically(self.shadow, data, private=True)  # beside the store: 0600 like its files
            self._shadow_hash = digest

    def _wrote(self, base: PackedBase, banner: str | None, digest: str, *, wrote: bool) -> None:
        self.base = base
        self._last_banner = banner
        if not self._is_last_write(digest):  # the last entry is what the file holds now
            self.written_hashes = [*[h for h in self.written_hashes if h != digest][-7:], digest]
        self.pending = {}  # every entity line in the file now carries its id
        if wrote:
            self.writes += 1
            self.last_write_at = now_iso()

    def _read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as fh:
                return fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None

    async def _banner_watch(self) -> None:
        """The degraded banner follows Postgres without a store change to trigger it."""
        while True:
            await asyncio.sleep(1.0)
            if self.healthy and self.banner() != self._last_banner:
                self._dirty.set()

    # --- reading -------------------------------------------------------------------------------

    async def _watcher(self) -> None:
        directory = self.path.parent
        async for names in self.changes(directory):
            if self.path.name in names:
                await self.import_file()

    async def import_file(self) -> ImportResult | None:
        """Read the file as it is now and apply a human's changes; None when there was nothing to do."""
        data = await self._stable_read()
        if data is None:
            if self.healthy:
                self._dirty.set()  # deleted: a mirror puts its file back
            return None
        digest = _sha(data)
        if digest == self.imported_hash or await asyncio.to_thread(self._own_write, digest):
            if self.state == "paused" and not self.foreign:  # the human put back a file we know: resume
                self._resume()
            return None
        if len(data) > MAX_FILE_BYTES:
            self.pause(
                f"{self.path.name} is larger than {MAX_FILE_BYTES} bytes; not imported",
                {"line": 0, "reason": "file too large"},
            )
            return None
        try:
            doc = await asyncio.to_thread(_parse_bytes, data)  # a large file parses off the event loop
        except (UnicodeDecodeError, MarkdownParseError) as exc:
            self.pause(f"{self.path.name} does not parse ({exc}); fix it and save to resume", _error(exc))
            return None
        if self.base is None or self.foreign:
            return None  # nothing rendered to compare with: a foreign file waits for migration
        try:
            result = await self._apply(doc, digest)
        except MarkdownParseError as exc:
            self.pause(
                f"{self.path.name} has a change the store refuses ({exc}); fix it and save to resume", _error(exc)
            )
            return None
        self.imported_hash = digest
        self.layout = doc.layout
        self.imports += 1
        self.last_import_at = now_iso()
        self.last_import = {
            "created": result.created_count, "updated": result.updated, "deleted": result.deleted,
            "conflicts": result.conflicts, "warnings": result.warnings,
        }  # fmt: skip
        for warning in result.warnings:
            log.warning("markdown import: %s", warning)
        self._resume()  # and re-render: new lines get their ids, the file shows the store's truth
        return result

    def _is_last_write(self, digest: str) -> bool:
        return bool(self.written_hashes) and self.written_hashes[-1] == digest

    def _own_write(self, digest: str) -> bool:
        """Is the file (read as ``digest``) this mirror's own latest write?

        An older render of ours put back (an editor's undo, ``git checkout``, a copy) is a human's
        save like any other: ignoring it would leave the file and the store apart, and the next
        render would drop the human's own text from it. A read that raced one of our writes is told
        apart under the writer's lock: the file has moved on since, and its own event follows.
        """
        if digest not in self.written_hashes or self._is_last_write(digest):
            return self._is_last_write(digest)
        with self._lock:
            current = self._read()
            return current is None or _sha(current) != digest or self._is_last_write(digest)

    def _resume(self) -> None:
        if self.state != "running":
            log.info("markdown mirror resumed: %s parses again", self.path.name)
        self.state, self.reason, self.error = "running", None, None
        self._dirty.set()

    async def _apply(self, doc: Document, digest: str) -> ImportResult:
        base = self.base
        assert base is not None
        ctx = WriteContext(actor=self.actor, via="markdown")
        result, after = await self.store.write(_import_save, ctx, base, doc, self.pending, digest)
        # The next save is compared with the state this one produced, even before the file is rewritten.
        self._gen += 1
        self.base = after or base
        for key, ids in result.created.items():
            self.pending.setdefault(key, []).extend(ids)
        return result

    async def _stable_read(self) -> bytes | None:
        """Read once the file has stopped changing (an editor writing in place in several steps)."""
        previous = self._read()
        for _ in range(20):
            await asyncio.sleep(STABLE_S)
            again = self._read()
            if again == previous:
                return again
            previous = again
        return previous


def _render_base(base: PackedBase | None, layout: tuple[Block, ...]) -> bytes:
    assert base is not None
    return render(unpack(base).state, layout).encode("utf-8")


def _parse_bytes(data: bytes) -> Document:
    return parse(data.decode("utf-8"))


# The hash of the last save imported, written in the import's own transaction: a start that finds
# that very file (a crash came before the render that gives its new lines their ids) knows the
# store already holds it, and does not create its new lines a second time.
IMPORTED_SAVE = "mirror_imported_save"


def _import_save(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    base: PackedBase,
    doc: Document,
    pending: dict[tuple[str, str, str | None], list[str]],
    digest: str,
) -> tuple[ImportResult, PackedBase | None]:
    outcome = apply_packed(conn, ctx, base, doc, pending)
    outbox.set_meta(conn, IMPORTED_SAVE, digest)
    return outcome


def _closeness(data: bytes, other: bytes) -> int:
    """How many lines ``data`` and ``other`` share (as multisets): which of two renders a file was."""
    return sum((Counter(data.splitlines()) & Counter(other.splitlines())).values())


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _error(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, MarkdownParseError):
        return {"line": exc.line, "reason": exc.reason}
    if isinstance(exc, UnicodeDecodeError):
        line = exc.object[: exc.start].count(b"\n") + 1 if isinstance(exc.object, bytes) else 0
        return {"line": line, "reason": "not UTF-8 text (binary data?)"}
    return {"line": 0, "reason": str(exc)}
