"""The in-process test layer: the real daemon inside the test's event loop, no child process.

``InProcessDaemon`` runs :class:`statusd.daemon.app.Daemon` — store, socket server, fast path,
replicator, scheduler — as a task of the running test. Clients connect over its real Unix socket
with the official MCP client, so everything a tool call crosses is the product's code; what is left
out is only the interpreter start-up (about 1 s, most of it importing the MCP SDK) and the
process-level behaviour (signals, exit codes, systemd notify, kill -9), which the tests that need
it still get from :class:`daemon_support.DaemonProcess`.

It has the same surface as ``DaemonProcess`` (``root``, ``socket_path``, ``config_path``,
``store_path``, ``client()``, ``log()``, ``alive()``), so a test moves between the two by swapping
its fixture. ``memory_client`` is the SDK's own habit: ``Client(server)`` over in-memory streams,
for tests about the MCP surface that need no socket at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.client.client import Client

from daemon_support import DaemonHost
from statusd.config import load_settings
from statusd.daemon import resources
from statusd.daemon.app import Daemon
from statusd.daemon.logs import JsonFormatter
from statusd.daemon.server import build_mcp_server
from statusd.daemon.service import Service
from statusd.daemon.sessions import CURRENT, Session, Sessions

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class _DaemonHost(DaemonHost):
    """What both in-process hosts add to ``DaemonHost``: the daemon object and its log capture."""

    def __init__(self, root: Path, *, extra_config: str = "", env: dict[str, str] | None = None) -> None:
        super().__init__(root, extra_config=extra_config, env=env)
        self.daemon: Daemon | None = None
        self.task: asyncio.Task[None] | None = None
        self._handler: logging.Handler | None = None
        self._old_level = logging.NOTSET

    def _capture_log(self) -> None:
        """The daemon's records go to ``daemon.log`` as in a real daemon (JSON lines).

        Loggers are per process: with several in-process daemons running, each file also gets the
        others' records. Tests that need one daemon's log alone use ``DaemonProcess``.
        """
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(JsonFormatter())
        handler.setLevel(logging.INFO)
        logger = logging.getLogger("statusd")
        self._old_level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        self._handler = handler

    def _release_log(self) -> None:
        if self._handler is not None:
            logger = logging.getLogger("statusd")
            logger.removeHandler(self._handler)
            logger.setLevel(self._old_level)
            self._handler.close()
            self._handler = None

    @property
    def service(self) -> Service:
        assert self.daemon is not None and self.daemon.service is not None
        return self.daemon.service

class InProcessDaemon(_DaemonHost):
    """A ``Daemon`` task in the current event loop; ``await start()``, then ``await stop()``."""

    async def start(self, within: float = START_TIMEOUT_S) -> InProcessDaemon:
        settings = load_settings(self.config_path, env=self.env)
        self._capture_log()
        self.daemon = Daemon(settings, own_process=False)
        self.task = asyncio.create_task(self.daemon.run(), name=f"daemon-{self.root.name}")
        ready = asyncio.create_task(self.daemon.ready.wait())
        done, _ = await asyncio.wait({self.task, ready}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self.task in done:
                self._release_log()
                self.task.result()  # raises what stopped the daemon
                raise RuntimeError(f"daemon ended before it was ready:\n{self.log()}")
            await self.stop()
            raise RuntimeError(f"daemon was not ready within {within}s:\n{self.log()}")
        return self

    async def stop(self, within: float = STOP_TIMEOUT_S) -> None:
        """What SIGTERM does to the process: drain, close the store, remove the socket; re-raise a crash."""
        try:
            if self.daemon is not None and self.task is not None and not self.task.done():
                self.daemon.stop()
                done, _ = await asyncio.wait({self.task}, timeout=within)
                if not done:
                    self.task.cancel()
                    await asyncio.gather(self.task, return_exceptions=True)
                    raise AssertionError(f"daemon did not stop within {within}s:\n{self.log()}")
            if self.task is not None and self.task.done() and not self.task.cancelled():
                self.task.result()
        finally:
            self._release_log()

    def alive(self) -> bool:
        return self.task is not None and not self.task.done()


class ThreadedDaemon(_DaemonHost):
    """The real ``Daemon`` in its own event loop on a thread of this process, with ``DaemonProcess``'s
    synchronous ``start()``/``stop()``: what replication tests use for each machine of a fleet.

    ``kill()`` is not offered: a thread cannot be killed -9; tests about that start processes.
    """

    def __init__(self, root: Path, *, extra_config: str = "", env: dict[str, str] | None = None) -> None:
        super().__init__(root, extra_config=extra_config, env=env)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> ThreadedDaemon:
        """Start (or, after ``stop()``, restart on the same store and socket, as a process would)."""
        self._ready = threading.Event()
        self._error = None
        self._loop = None
        self.daemon = None
        settings = load_settings(self.config_path, env=self.env)
        self._capture_log()
        self._thread = threading.Thread(target=self._main, args=(settings,), name=f"daemon-{self.root.name}")
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"daemon was not ready within {timeout}s:\n{self.log()}")
        if self._error is not None or not self.alive():
            self.stop()
            raise RuntimeError(f"daemon ended before it was ready:\n{self.log()}")
        return self

    def _main(self, settings: Any) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self.daemon = Daemon(settings, own_process=False)
            task = asyncio.create_task(self.daemon.run())
            ready = asyncio.create_task(self.daemon.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            self._ready.set()
            ready.cancel()
            try:
                await task
            finally:
                # Transports aborted during shutdown close on the loop's next turns; a process
                # would exit here, a thread must let them finish before its loop is closed.
                for _ in range(3):
                    await asyncio.sleep(0)

        try:
            asyncio.run(serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """What SIGTERM does to the process; 0 as its exit code, or the crash re-raised."""
        try:
            if self._thread is not None:
                if self._loop is not None and self.daemon is not None and self._thread.is_alive():
                    self._loop.call_soon_threadsafe(self.daemon.stop)
                self._thread.join(timeout)
                if self._thread.is_alive():
                    raise AssertionError(f"daemon did not stop within {timeout}s:\n{self.log()}")
            if self._error is not None:
                raise self._error
            return 0
        finally:
            self._release_log()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cleanup(self) -> None:
        if self.alive():
            self.stop()
        super().cleanup()


@asynccontextmanager
async def inprocess_daemon(root: Path, **kw: Any) -> AsyncIterator[InProcessDaemon]:
    """A started in-process daemon, stopped (and any crash re-raised) when the block ends."""
    d = InProcessDaemon(root, **kw)
    try:
        await d.start()
        yield d
        await d.stop()
    finally:
        if d.alive():
            await d.stop()
        d.cleanup()


@asynccontextmanager
async def memory_client(service: Service, name: str = "memory-client") -> AsyncIterator[Client]:
    """The SDK's in-memory ``Client`` against the daemon's real MCP server object (no socket)."""
    info = types.Implementation(name=name, version="1.0")
    watchers = Sessions(lambda uri: resources.fingerprint(service, uri), open_conflicts=service.open_conflicts)
    session = Session()  # what the socket server sets per connection; the server's tasks inherit it
    token = CURRENT.set(session)
    watchers.add(session)
    try:
        async with Client(build_mcp_server(service, watchers), client_info=info, mode="legacy") as client:
            yield client
    finally:
        CURRENT.reset(token)
