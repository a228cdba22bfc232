"""The real socket server inside the test's event loop, and a raw JSON-RPC line client for it.

For tests of the MCP surface (SPEC §4.4): the daemon's store, service and socket server, without a
process to start; the client speaks bytes so tests see exactly what a host would.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from daemon_support import short_socket_dir
from statusd.daemon.server import SocketServer
from statusd.daemon.service import Service
from statusd.store import Store
from statusd.sync.replicator import Replicator


@asynccontextmanager
async def serving(
    store_path: Path,
    *,
    fast_path: bool = True,
    clock: Callable[[], str] | None = None,
    hub: tuple[str, str] | None = None,
    machine: str = "test-machine",
) -> AsyncIterator[SocketServer]:
    """A store, a service and a listening socket server on a short socket path.

    ``hub`` = (dsn, schema) replicates through that Postgres schema; ``server.service.replicator``
    is created but not started (``asyncio.create_task(server.service.replicator.run())``).
    """
    sock_dir = short_socket_dir()
    try:
        async with Store(store_path, machine=machine, clock=clock, replicated=hub is not None) as store:
            replicator = None
            if hub is not None:
                replicator = Replicator(store, dsn=hub[0], password=None, schema=hub[1], pull_interval_s=300.0)
                store.add_listener(replicator.wake)
            service = Service(store, replicator=replicator)
            server = SocketServer(service, sock_dir / "statusd.sock", fast_path=fast_path)
            await server.start()
            task = asyncio.get_running_loop().create_task(server.serve())
            try:
                yield server
            finally:
                await server.close()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


class RawClient:
    """Newline-delimited JSON-RPC over the socket; every line the server writes is kept in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[bytes] = []
        self._next = 0

    async def send(self, *messages: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else b"".join(json.dumps(m).encode() + b"\n" for m in messages)
        self.writer.write(data)
        await self.writer.drain()

    async def next_line(self, within: float = 10.0) -> bytes:
        async with asyncio.timeout(within):
            line = await self.reader.readline()
        assert line, "the server closed the connection"
        self.lines.append(line)
        return line

    async def answer(self, ident: Any, within: float = 10.0) -> tuple[bytes, Any]:
        """The raw line and decoded answer for request ``ident`` (notifications before it are kept)."""
        for line in self.lines[self._next :]:
            decoded = json.loads(line)
            if isinstance(decoded, dict) and decoded.get("id") == ident and "method" not in decoded:
                return line, decoded
        while True:
            line = await self.next_line(within)
            decoded = json.loads(line)
            if isinstance(decoded, dict) and decoded.get("id") == ident and "method" not in decoded:
                return line, decoded

    async def request(self, ident: Any, method: str, params: dict[str, Any] | None = None) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return (await self.answer(ident))[1]

    async def notification(self, method: str, within: float = 10.0) -> dict[str, Any]:
        """The next server notification with this method (earlier lines stay readable)."""
        while True:
            line = await self.next_line(within)
            decoded = json.loads(line)
            if isinstance(decoded, dict) and decoded.get("method") == method:
                return decoded

    async def initialize(self, version: str = "2025-06-18", name: str = "raw-client") -> dict[str, Any]:
        answer = await self.request(
            0,
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": name, "version": "1"}},
        )
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer  # type: ignore[no-any-return]

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@asynccontextmanager
async def raw_client(socket_path: Path) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=16 * 1024 * 1024)
    client = RawClient(reader, writer)
    try:
        yield client
    finally:
        await client.close()
