"""The daemon process: open the store, listen, run upkeep, shut down cleanly.

One ``AsyncExitStack`` owns every resource the daemon starts — store, listening socket, socket
server, replicator task, scheduler — in start-up order, so whatever path leaves :meth:`Daemon.run`
(SIGTERM, a start-up error, a crash in a task) stops exactly what was started, newest first. A
new resource (the markdown mirror) is one more ``enter`` in :meth:`Daemon._start`.

Start-up order is what systemd's READY=1 promises: the store is open and the socket listens.
Postgres is never waited for, and neither is the MCP SDK: the socket is bound first, READY is
sent, and the SDK (about a second to import) loads while early connections wait in the accept
queue (SPEC §11 P14). SIGTERM/SIGINT stop new calls, let in-flight calls finish (bounded), close
the store and remove the socket, well within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio

from statusd.config import Settings
from statusd.daemon import listener, systemd
from statusd.daemon.service import Service
from statusd.daemon.upkeep import Upkeep
from statusd.store import Store
from statusd.sync import rebuild
from statusd.sync.mirror import Mirror
from statusd.sync.replicator import Replicator

if TYPE_CHECKING:
    from statusd.daemon.server import SocketServer

log = logging.getLogger(__name__)

STORE_GUARD_S = 2.0
DRAIN_SECONDS = 3.0
TASK_STOP_SECONDS = 1.5
SWITCH_INTERVAL_S = 0.0005


class State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Daemon:
    """``await Daemon(settings).run()`` serves until ``stop()`` or a termination signal."""

    def __init__(self, settings: Settings, *, own_process: bool = True) -> None:
        # ``own_process=False`` (tests run the daemon inside their event loop): leave the process's
        # signal handlers, garbage collector and switch interval alone, they belong to the host.
        self.settings = settings
        self.own_process = own_process
        self.state = State.NEW
        self.store: Store | None = None
        self.service: Service | None = None
        self.server: SocketServer | None = None
        self.replicator: Replicator | None = None
        self.upkeep: Upkeep | None = None
        self.mirror: Mirror | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        if self.state is not State.NEW:
            raise RuntimeError(f"a Daemon runs once; this one is {self.state.value}. Create a new Daemon.")
        self.state = State.STARTING
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                await self._stop.wait()
                self.state = State.STOPPING
                systemd.stopping()
                if self.server is not None:
                    await self._drain()
            # Leaving the stack stopped, newest first: scheduler, replicator, server, socket, store.
            log.info("statusd stopped")
        finally:
            self.state = State.STOPPED

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        # First, before anything is visible: a SIGTERM that arrives once the socket file exists
        # must find the handler, not the default action (which kills without cleaning up).
        for sig in (signal.SIGTERM, signal.SIGINT) if self.own_process else ():
            loop.add_signal_handler(sig, self.stop)
            stack.callback(_remove_signal_handler, loop, sig)
        mirror_path = s.mirror.path if s.mirror.enabled else None
        lost = rebuild.needs_rebuild(s.store.path, mirror_path, s.replicated)
        store = Store(s.store.path, synchronous=s.store.synchronous, project=s.project, replicated=s.replicated)
        store.open()
        stack.callback(store.close)
        self.store = store
        if store.moved_aside is not None:
            log.warning("the unreadable store was kept at %s", store.moved_aside)
            lost = "corrupt"
        dsn = s.postgres_dsn()
        if dsn is not None:
            self.replicator = Replicator(
                store, dsn=dsn, password=s.postgres_password(), schema=s.postgres.schema_name,
                pull_interval_s=s.sync.pull_interval_s, max_backoff_s=s.sync.max_backoff_s,
                heartbeat_s=s.sync.heartbeat_s,
            )  # fmt: skip
            store.add_listener(self.replicator.wake)
        self.service = Service(
            store,
            archive_after_days=s.archive.after_days,
            mirror_enabled=s.mirror.enabled,
            replicator=self.replicator,
            write_mode=s.sync.write_mode,
            confirm_timeout_s=s.sync.confirm_timeout_ms / 1000,
        )
        wait_for_bootstrap = await self._start_mirror(stack, lost, mirror_path)
        owner = f"project {s.project!r} in {s.root}"
        sock, lock, bound = listener.listen(s.socket_path, owner)
        stack.callback(lock.release)
        stack.callback(sock.close)
        stack.callback(listener.remove_if_bound, s.socket_path, bound)
        systemd.ready()
        mode = f"replicated via {s.postgres_dsn_redacted()}" if s.replicated else "standalone"
        systemd.status(f"serving {s.project}: {mode}, store {s.store.path.name}")
        log.info("statusd listening for project %s on %s (store %s)", s.project, s.socket_path, s.store.path)

        server_module = await self._load_server_module()
        if server_module is None:
            return  # stopped while the SDK was loading: nothing more to start
        self.server = server_module.SocketServer(self.service, s.socket_path, owner=owner)
        await self.server.start((sock, lock, bound))
        stack.push_async_callback(self.server.close)
        await stack.enter_async_context(self._task("server", self.server.serve()))
        await stack.enter_async_context(self._task("watchdog", self._watchdog()))
        await stack.enter_async_context(self._task("store guard", self._guard_store(store)))
        if systemd.watchdog_interval_s() is not None or os.environ.get("NOTIFY_SOCKET"):
            await stack.enter_async_context(self._task("status line", self._status_line()))
        if self.replicator is not None:
            await stack.enter_async_context(self._task("replicator", self.replicator.run()))
        if self.mirror is not None:
            run = self._mirror_after_bootstrap() if wait_for_bootstrap else self.mirror.run()
            await stack.enter_async_context(self._task("mirror", run))
        self.upkeep = await stack.enter_async_context(Upkeep(s, store, self.replicator))
        self.service.jobs = self.upkeep.summary
        self.state = State.RUNNING
        self.ready.set()
        log.info("statusd serving project %s", s.project)
        # Start-up objects (SDK models, schemas, settings) live as long as the process: keep them
        # out of every later collection, and collect young objects less often (p99 of a call).
        if not self.own_process:
            return
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        # A reader thread running a long report holds the GIL for up to one switch interval at a
        # time; 5 ms (the default) would be every waiting point read's added latency (P17).
        sys.setswitchinterval(SWITCH_INTERVAL_S)

    async def _start_mirror(self, stack: contextlib.AsyncExitStack, lost: str | None, mirror_path: Any) -> bool:
        """Rebuild a lost store (SPEC §6) and take over the mirror file; True: wait for Postgres first."""
        s, store, service = self.settings, self.store, self.service
        assert store is not None and service is not None
        wait_for_bootstrap = False
        if lost is not None and s.replicated:
            # The replicator's bootstrap of the empty store is the rebuild (Postgres first).
            service.data_source = "postgres"
            service.rebuild_warning = f"store_rebuilding: the store was {lost}; rebuilding from Postgres"
            log.warning(service.rebuild_warning)
            wait_for_bootstrap = True
        elif lost is not None and mirror_path is not None:
            found = await rebuild.rebuild_from_markdown(store, mirror_path, lost)
            service.data_source = found.source or "local_store"
            service.rebuild_warning = found.warning
        if not s.mirror.enabled:
            return False
        self.mirror = Mirror(
            store,
            s.mirror.path,
            debounce_ms=s.mirror.debounce_ms,
            banner=service.degraded_banner,
            follow_banner=s.replicated,
            collect_after_render=self.own_process,
        )
        service.mirror = self.mirror
        stack.push_async_callback(self.mirror.close)  # runs before the store closes: SIGTERM flushes the file
        if wait_for_bootstrap:
            self.mirror.pause("the store is being rebuilt from Postgres; the file is left as it is until then")
        else:
            await self.mirror.start(adopt=lost is not None)
        return wait_for_bootstrap

    async def _mirror_after_bootstrap(self) -> None:
        """Start the mirror once Postgres has refilled the store (it then takes the file over as is)."""
        assert self.store is not None and self.mirror is not None
        while self.store.meta("pull_cursor") is None:  # noqa: ASYNC110 (the replicator sets no event for it)
            await anyio.sleep(0.2)
        await self.mirror.start(adopt=True, hub_rebuilt=True)
        await self.mirror.run()

    async def _load_server_module(self) -> ModuleType | None:
        """Import the SDK-based server on a daemon thread; None if a stop came first.

        Not ``asyncio.to_thread``: ``asyncio.run`` joins its executor's threads on the way out, so a
        SIGTERM during a slow import (seconds on a busy machine) would wait for the import to finish.
        """
        loop = asyncio.get_running_loop()
        loaded: asyncio.Future[ModuleType] = loop.create_future()

        def deliver(fn: Any, value: Any) -> None:
            if not loaded.done():
                fn(value)

        def work() -> None:
            try:
                module = importlib.import_module("statusd.daemon.server")
            except BaseException as exc:
                with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
                    loop.call_soon_threadsafe(deliver, loaded.set_exception, exc)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(deliver, loaded.set_result, module)

        threading.Thread(target=work, name="statusd-sdk-import", daemon=True).start()
        stopped: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([loaded, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not loaded.done():
            loaded.cancel()
            return None
        return loaded.result()

    @contextlib.asynccontextmanager
    async def _task(self, name: str, coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
        """Run ``coro`` as a task for the life of the block; a task that dies stops the daemon."""
        task = asyncio.create_task(coro, name=name)

        def done(t: asyncio.Task[Any]) -> None:
            if not t.cancelled() and t.exception() is not None and self.state is State.RUNNING:
                log.error("%s failed; stopping", name, exc_info=t.exception())
                self.stop()

        task.add_done_callback(done)
        try:
            yield task
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(TASK_STOP_SECONDS):
                    await task

    async def _drain(self) -> None:
        """Refuse new calls, then wait (bounded) for the ones in flight."""
        assert self.service is not None and self.server is not None
        self.service.draining = True
        await self.server.stop_accepting()
        with anyio.move_on_after(DRAIN_SECONDS):
            await self.service.idle.wait()
            await self.server.answers.idle.wait()  # handlers done is not answers written

    async def _status_line(self) -> None:
        """Keep systemd's status line showing the sync summary (SPEC §5.6)."""
        assert self.service is not None
        last = ""
        while True:
            sync = self.service.sync_summary()
            hub = sync["postgres"]
            text = f"{self.settings.project}: {sync['mode']}"
            if hub is not None:
                text += ", postgres " + ("up" if hub["reachable"] else f"down since {hub['down_since']}")
            text += f", {sync['pending_outbox']} pending, {sync['open_conflicts']} conflicts"
            if text != last:
                systemd.status(text)
                last = text
            await anyio.sleep(5)

    async def _guard_store(self, store: Store) -> None:
        """Notice a store file deleted or replaced while idle, and write it back (a stat every 2 s)."""
        while True:
            await anyio.sleep(STORE_GUARD_S)
            try:
                await store.guard_file()
            except Exception:  # a full disk, a read-only directory: say so and keep serving
                log.exception("the store file %s is gone and could not be written back", store.path)

    async def _watchdog(self) -> None:
        interval = systemd.watchdog_interval_s()
        if interval is None:
            return
        while True:
            systemd.watchdog_ping()
            await anyio.sleep(interval / 2)


def _remove_signal_handler(loop: asyncio.AbstractEventLoop, sig: int) -> None:
    with contextlib.suppress(Exception):
        loop.remove_signal_handler(sig)
