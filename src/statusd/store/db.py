"""The SQLite store: one writer thread, one loop-thread reader, one daemon per file.

Writes are whole-transaction functions ``fn(conn, ctx, *args)`` run on a single writer thread
inside ``BEGIN IMMEDIATE … COMMIT`` (one hop per transaction rather than per statement). Reads are
functions ``fn(conn, *args)`` run directly on the event-loop thread against a separate read
connection: a point read is a few microseconds there, far less than any thread hop (SPEC §13).
WAL mode lets those reads proceed while the writer commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio

from statusd import pidlock
from statusd.models import now_iso
from statusd.store import configuration, import_runs, schema, sqlite_errors
from statusd.store.context import WriteContext

__all__ = ["Store", "WriteContext"]

log = logging.getLogger(__name__)

HEAVY_READERS = 2  # threads for long reads; point reads stay on the loop thread
READER_NICE = 10

P = ParamSpec("P")
T = TypeVar("T")


def private_dir(path: Path) -> None:
    """Create the store's directory 0700 (whatever the umask) and tighten one others can enter.

    The home directory is never changed: a store kept directly in it relies on its files' 0600.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode == 0o700 or st.st_uid != os.getuid() or path.resolve() == Path.home().resolve():
        return
    os.chmod(path, 0o700)
    if mode & 0o077:
        log.warning("store directory %s was %s; made it 0700 (the store is private)", path, oct(mode))


def private_file(path: Path, *, create: bool = True) -> None:
    """Make ``path`` 0600 (creating it empty when asked): the store holds the project's data.

    By path, never through a descriptor of our own: closing one would drop every POSIX lock this
    process holds on the file, SQLite's WAL locks among them.
    """
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        os.chmod(path, 0o600)
    except FileNotFoundError:
        return
    except PermissionError:  # not ours (a root-owned copy): leave it, SQLite will say what it can
        log.warning("cannot make %s private (0600): it belongs to another user", path)


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous.upper() == 'FULL' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _lower_priority() -> None:
    """Run this reader thread at a lower CPU priority: on a busy machine the loop thread's point
    reads then win the CPU over a long report (Linux schedules threads individually)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICE)


class Store:
    """Open with ``async with Store(path, machine=...) as store``."""

    def __init__(
        self,
        path: Path | str,
        *,
        machine: str | None = None,
        replicated: bool = False,
        synchronous: str = "FULL",
        project: str = "default",
        clock: Callable[[], str] | None = None,
    ) -> None:
        self.path = Path(path)
        # None: the store's own machine id (meta ``machine_id``), read on open. Tests name machines.
        self.machine = machine or ""
        self._machine_given = machine is not None
        self.replicated = replicated
        self.synchronous = synchronous
        self.project = project
        self.clock = clock or now_iso
        self.moved_aside: Path | None = None
        self._lock_fd: int | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._pool_conns: list[sqlite3.Connection] = []
        self._pool_local = threading.local()
        self._pool_lock = threading.Lock()
        self._listeners: list[Callable[[WriteContext], None]] = []
        self._file_id: tuple[int, int] | None = None  # (device, inode) of the file we have open
        self._generation = 0  # bumped when the file is restored: pooled readers reconnect
        self._retired: list[sqlite3.Connection] = []

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Store:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        private_dir(self.path.parent)
        self._take_lock()
        try:
            private_file(self.path)  # before SQLite creates it: its -wal and -shm copy its mode
            self._writer = self._open_or_move_aside()
            self._file_id = self._identity()
            # 32 MB of page cache for the writer: index pages of a 100,000-item store stay in memory
            # (a bootstrap copy ran 15% faster); the reader keeps SQLite's small default.
            self._writer.execute("PRAGMA cache_size = -32768")
            schema.migrate(self._writer)
            for suffix in ("-wal", "-shm"):
                private_file(Path(str(self.path) + suffix), create=False)
            if not self._machine_given:
                row = self._writer.execute("SELECT value FROM meta WHERE key = 'machine_id'").fetchone()
                self.machine = str(row[0])
            self._reader = _connect(self.path, self.synchronous)
            self._reader.execute("PRAGMA query_only=ON")
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="statusd-writer")
            self._read_pool = ThreadPoolExecutor(
                max_workers=HEAVY_READERS, thread_name_prefix="statusd-reader", initializer=_lower_priority
            )
            self.write_sync(configuration.ensure, WriteContext(actor="statusd", machine=self.machine), self.project)
            # An import the last process left running (kill -9) is rolled back before anyone reads.
            import_runs.recover(self.reader, self.write_sync, self.machine)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            self._read_pool = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._pool_lock:
            pooled, self._pool_conns = self._pool_conns, []
        retired, self._retired = self._retired, []
        for conn in (*pooled, *retired, self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._reader = self._writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _take_lock(self) -> None:
        self._lock_fd = pidlock.take(self.path.with_name(self.path.name + ".lock"), str(self.path))

    def _open_or_move_aside(self) -> sqlite3.Connection:
        """Open the store; a file that is not a readable database is moved aside, never deleted."""
        try:
            conn = _connect(self.path, self.synchronous)
            ok = conn.execute("PRAGMA quick_check").fetchone()
            if ok and ok[0] == "ok":
                return conn
            conn.close()
            reason = str(ok[0]) if ok else "no answer"
        except sqlite3.DatabaseError as exc:
            reason = str(exc)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1  # rename() replaces an existing file: never let a second corruption erase the first copy
        while any(Path(str(aside) + suffix).exists() for suffix in ("", "-wal", "-shm")):
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(aside) + suffix))
        log.warning("store %s unreadable (%s); moved aside to %s and starting empty", self.path, reason, aside)
        self.moved_aside = aside
        private_file(self.path)
        return _connect(self.path, self.synchronous)

    # --- access --------------------------------------------------------------------------------

    @property
    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("the store is not open; use 'async with Store(...)' first")
        return self._reader

    def read(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        """Run a read function on the loop thread, inside one read transaction."""
        conn = self.reader
        with sqlite_errors.mapped(self.path, reading=True):
            conn.execute("BEGIN")
            try:
                return fn(conn, *args, **kw)
            finally:
                conn.execute("COMMIT")

    async def read_off_loop(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """Run a long read (a report, a scan) on a reader thread with its own read-only connection.

        The loop keeps serving point reads meanwhile: a 100,000-item report takes tens of
        milliseconds, and on the loop every other call would wait for all of it (SPEC §11 P17).
        """
        if self._read_pool is None:
            raise RuntimeError("the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, lambda: self._pooled_read(fn, args, kw))

    def _pooled_read(self, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        conn: sqlite3.Connection | None = getattr(self._pool_local, "conn", None)
        if conn is None or getattr(self._pool_local, "generation", 0) != self._generation:
            conn = _connect(self.path, self.synchronous)
            conn.execute("PRAGMA query_only=ON")
            self._pool_local.conn = conn
            self._pool_local.generation = self._generation
            with self._pool_lock:
                self._pool_conns.append(conn)
        conn.execute("BEGIN")
        try:
            return fn(conn, *args, **kw)
        finally:
            conn.execute("COMMIT")

    def add_listener(self, callback: Callable[[WriteContext], None]) -> None:
        """Call ``callback(ctx)`` on the loop thread after every committed write."""
        self._listeners.append(callback)

    async def write(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, WriteContext, P], T],
        ctx: WriteContext,
        *args: P.args,
        **kw: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ctx, ...)`` as one transaction on the writer thread."""
        if self._executor is None:
            raise RuntimeError("the store is not open")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, lambda: self._transaction(fn, ctx, args, kw))
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            ctx.cancel_requested = True
            # The transaction runs on in the writer thread whatever happens here: a cancelled caller
            # (a cancelled MCP request, shutdown) ends only once it has committed or rolled back, so
            # when the caller's task is over its work is over, and listeners hear of what committed.
            with anyio.CancelScope(shield=True):
                await asyncio.wait({future})
            if not future.cancelled() and future.exception() is None:
                self._committed(ctx)
            raise
        self._committed(ctx)
        return result

    def _committed(self, ctx: WriteContext) -> None:
        if ctx.changed_entities:
            for callback in self._listeners:
                callback(ctx)

    def write_sync(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, WriteContext, P], T],
        ctx: WriteContext,
        *args: P.args,
        **kw: P.kwargs,
    ) -> T:
        """Run a write transaction on the calling thread (start-up, tests, seeding tools)."""
        return self._transaction(fn, ctx, args, kw)

    def _transaction(self, fn: Callable[..., T], ctx: WriteContext, args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        if self._writer is None:
            raise RuntimeError("the store is not open")
        self._restore_if_gone()
        conn = self._writer
        assert conn is not None
        ctx.machine = ctx.machine or self.machine
        ctx.replicated = self.replicated
        ctx.now = self.clock()
        relaxed = not ctx.durable and self.synchronous.upper() == "FULL"
        with sqlite_errors.mapped(self.path, conn=conn):
            if relaxed:
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, ctx, *args, **kw)
                conn.execute("COMMIT")
            except BaseException:
                ctx.changed_entities.clear()
                ctx.op_ids.clear()
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # never hide the error that got us here
                        conn.execute("ROLLBACK")
                raise
            finally:
                if relaxed:
                    conn.execute("PRAGMA synchronous=FULL")
        return result

    # --- a store file removed or replaced under the running daemon ------------------------------

    @property
    def file_generation(self) -> int:
        """Bumped each time the store file is written back: other connections to it must reopen."""
        return self._generation

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    async def guard_file(self) -> bool:
        """Put the store file back if it was deleted or replaced; True when it had to (writer thread)."""
        if self._executor is None:
            return False
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._restore_if_gone)

    def _restore_if_gone(self) -> bool:
        """Write the open database back to its path when the file there is not the one we have open.

        Writes made after ``rm store.sqlite3`` would otherwise land in an unlinked inode and vanish
        at the next start. The open connection still reads every committed page, so SQLite's backup
        copies the whole store to a temp file that is renamed into place; a foreign file found at
        the path is moved aside, never overwritten. Runs on the writer thread, between transactions.
        """
        if self._file_id is None or self._writer is None or self._identity() == self._file_id:
            return False
        private_dir(self.path.parent)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        if self.path.exists():
            aside = self.path.with_name(f"{self.path.name}.replaced-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    src.rename(Path(str(aside) + suffix))
            log.warning("store %s was replaced under the running daemon; the new file was kept at %s", self.path, aside)
        else:
            log.warning("store %s was removed under the running daemon; writing it back", self.path)
        for suffix in ("-wal", "-shm"):  # leftovers of the vanished file must not join the new one
            with contextlib.suppress(FileNotFoundError):
                Path(str(self.path) + suffix).unlink()
        tmp = self.path.with_name(self.path.name + ".restoring")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        private_file(tmp)
        dest = sqlite3.connect(tmp)
        try:
            self._writer.backup(dest)
        finally:
            dest.close()
        os.replace(tmp, self.path)
        if self._lock_fd is not None and not self.path.with_name(self.path.name + ".lock").exists():
            os.close(self._lock_fd)
            self._take_lock()
        old_writer, old_reader = self._writer, self._reader
        self._writer = _connect(self.path, self.synchronous)
        self._writer.execute("PRAGMA cache_size = -32768")
        reader = _connect(self.path, self.synchronous)
        reader.execute("PRAGMA query_only=ON")
        self._reader = reader
        self._generation += 1
        for suffix in ("-wal", "-shm"):
            private_file(Path(str(self.path) + suffix), create=False)
        self._file_id = self._identity()
        old_writer.close()
        if old_reader is not None:
            self._retired.append(old_reader)  # the loop thread may be mid-read on it
        log.warning("store %s restored from the running daemon's open copy; nothing was lost", self.path)
        return True

    async def maintain(self) -> dict[str, Any]:
        """``PRAGMA optimize`` and a passive WAL checkpoint, on the writer thread between transactions."""
        if self._executor is None:
            raise RuntimeError("the store is not open")

        def work() -> dict[str, Any]:
            conn = self._writer
            assert conn is not None
            conn.execute("PRAGMA optimize")
            busy, wal_pages, moved = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return {"optimized": True, "wal_pages": wal_pages, "checkpointed_pages": moved, "busy": bool(busy)}

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def meta(self, key: str) -> str | None:
        row = self.reader.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def schema_version(self) -> int:
        return schema.current_version(self.reader)
