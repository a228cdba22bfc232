"""A fault-injecting TCP proxy for the replication tests (SPEC §12 R3).

``TcpProxy(upstream_host, upstream_port)`` listens on ``127.0.0.1:<random>`` and forwards to the
upstream in one of four modes, switchable at any time:

* ``pass``      forward both ways;
* ``reset``     abort every open connection with a TCP RST, and reset new ones on accept;
* ``blackhole`` accept and keep connections open, but forward nothing either way (a half-open
                path: the peer's writes succeed and no answer ever comes);
* ``delay``     forward every chunk after ``delay_ms``.

The proxy runs its own event loop on a thread, so a test that blocks its own loop (starting a
daemon, reading SQLite) never stalls the traffic it is meant to shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

Mode = Literal["pass", "reset", "blackhole", "delay"]
T = TypeVar("T")


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    @classmethod
    def to(cls, dsn: str) -> TcpProxy:
        """A started proxy in front of the server ``dsn`` names (a TCP DSN)."""
        parts = urlsplit(dsn)
        return cls(parts.hostname or "localhost", parts.port or 5432).start()

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "pass"
        self.delay_ms = 0
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self.port = 0

    # --- control (any thread) --------------------------------------------------------------------

    def start(self) -> TcpProxy:
        if self._thread.is_alive():
            return self
        self._thread.start()
        self.port = self._call(self._listen())
        return self

    def set_mode(self, mode: Mode, delay_ms: int = 0) -> None:
        async def switch() -> None:
            self.mode, self.delay_ms = mode, delay_ms
            if mode == "reset":
                for client, upstream in list(self._links):
                    _abort_with_rst(client)
                    if upstream is not None:
                        _abort_with_rst(upstream)
                self._links.clear()

        self._call(switch())

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for client, upstream in list(self._links):
                _abort_with_rst(client)
                if upstream is not None:
                    _abort_with_rst(upstream)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()

        self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def dsn_for(self, dsn: str) -> str:
        """``dsn`` with its host and port replaced by this proxy's."""
        parts = urlsplit(dsn)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{self.port}"))

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # --- the proxy's own loop --------------------------------------------------------------------

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        try:
            if self.mode == "reset":
                return
            self._links.add(link)
            if self.mode == "blackhole":
                while await reader.read(65536):
                    pass
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self._links.discard(link)
            link = (writer, up_writer)
            self._links.add(link)
            try:
                await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
            finally:
                up_writer.transport.abort()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(link)
            _abort_with_rst(writer)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while True:
            chunk = await src.read(65536)
            if not chunk:
                dst.transport.abort()
                return
            if self.mode == "blackhole":
                continue  # swallowed: the sender believes it was sent
            if self.mode == "delay" and self.delay_ms:
                await asyncio.sleep(self.delay_ms / 1000)  # simulated latency, not a wait for a condition
            dst.write(chunk)
            await dst.drain()
