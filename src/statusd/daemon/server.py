"""The daemon's Unix-socket MCP server (SPEC §4.3): one MCP session per connection.

The socket lives in a 0700 directory, is created 0600, and every connection's peer uid is checked
against ours before a single byte is read. A lock file next to the socket keeps a second daemon
from replacing a running one's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage

from statusd.daemon import resources
from statusd.daemon.batches import Batches, error_answer
from statusd.daemon.fastpath import FastToolCalls
from statusd.daemon.listener import SocketLock, peer_uid, prepare_socket_dir
from statusd.daemon.protocol import CONNECTION_CLIENT, build_mcp_server
from statusd.daemon.service import Service
from statusd.daemon.sessions import CURRENT, Session, Sessions
from statusd.daemon.transport import HELLO_PREFIX, LineReader, LineWriter
from statusd.errors import ConfigError
from statusd.limits import MAX_REQUEST_BYTES
from statusd.paths import socket_path_problem

log = logging.getLogger(__name__)

# How long a half-closed connection is kept for the answers to its last requests.
EOF_GRACE_SECONDS = 60.0




class Answers:
    """Requests read from any connection and not yet answered on the wire.

    ``Service`` knows when a handler returns, but the SDK writes the response a few awaits later;
    a shutdown that cancelled the connections at that moment would drop the answer. Counting at
    the transport lets the drain wait until the bytes are written.
    """

    def __init__(self) -> None:
        self.pending = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def add(self, n: int = 1) -> None:
        self.pending += n
        if self.pending > 0:
            self.idle.clear()
        else:
            self.idle.set()


class _Requests:
    """One connection's requests read but not yet answered."""

    def __init__(self, answers: Answers) -> None:
        self._answers = answers
        self._ids: set[Any] = set()
        # Cancelled before their answer was written: the SDK may still finish them (a handler that
        # never awaits cannot be interrupted), so the writer drops their answers.
        self.cancelled: set[Any] = set()
        self.none_open = asyncio.Event()
        self.none_open.set()

    def opened(self, ident: Any) -> None:
        self.cancelled.discard(ident)  # an id is free for reuse once its request has ended
        if ident not in self._ids:
            self._ids.add(ident)
            self._answers.add()
            self.none_open.clear()

    def cancel(self, ident: Any) -> None:
        """The client cancelled a request it is still waiting for: its answer must never be written."""
        if ident in self._ids:
            self.cancelled.add(ident)
            self.answered(ident)

    def answered(self, ident: Any) -> None:
        if ident in self._ids:
            self._ids.discard(ident)
            self._answers.add(-1)
            if not self._ids:
                self.none_open.set()

    def close(self) -> None:
        """The peer is gone: nobody waits for these answers any more."""
        self._answers.add(-len(self._ids))
        self._ids.clear()
        self.none_open.set()


class _CountingReader(LineReader):
    def __init__(self, stream: Any, requests: _Requests, session: Session, batches: Batches) -> None:
        super().__init__(stream)
        self._requests = requests
        self._session = session
        self._batches = batches

    async def receive(self) -> SessionMessage | Exception:
        try:
            msg = await super().receive()
        except anyio.EndOfStream:
            # A peer that half-closes after its last request (``statusd mcp`` on stdin EOF) still
            # reads the answers; the SDK would cancel the handlers as soon as it saw EOF.
            with anyio.move_on_after(EOF_GRACE_SECONDS):
                await self._requests.none_open.wait()
            raise
        message = msg.message if isinstance(msg, SessionMessage) else None
        if isinstance(message, types.JSONRPCRequest):
            self._requests.opened(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            # The SDK never answers a cancelled request; nobody should wait for it.
            cancelled = cancelled_request_id_from_params(message.params)
            if cancelled is not None:
                self._requests.cancel(cancelled)
                line = self._batches.cancelled(cancelled)
                if line is not None and self.reply is not None:
                    await self.reply.send_line(line)
        return msg

    async def _salvage(self, line: bytes, error: Exception) -> SessionMessage | None:
        if line.lstrip().startswith(b"["):
            try:
                raw = json.loads(line)
            except (ValueError, RecursionError):
                raw = None
            if isinstance(raw, list):
                await self._batch(raw)
                return None
        return await super()._salvage(line, error)

    async def _batch(self, elements: list[Any]) -> None:
        """Serve a batch where the session's protocol version has them; otherwise answer that it does not."""
        assert self.reply is not None
        if not elements:
            await self.reply.send(SessionMessage(error_answer(None, types.INVALID_REQUEST, "empty batch")))
            return
        if not self._session.batches:
            version = self._session.protocol_version or "none (not initialized)"
            message = f"JSON-RPC batches are not part of protocol version {version}; send one message per line"
            await self.reply.send(SessionMessage(error_answer(None, types.INVALID_REQUEST, message)))
            return
        messages, answer = self._batches.split(elements)
        self.queued.extend(messages)
        if answer is not None:
            await self.reply.send_line(answer)


class _CountingWriter(LineWriter):
    def __init__(self, stream: Any, requests: _Requests, session: Session, batches: Batches) -> None:
        super().__init__(stream)
        self._requests = requests
        self._session = session
        self._batches = batches

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id in self._requests.cancelled:
            self._requests.cancelled.discard(message.id)
            return  # cancelled by the client: never answered (SPEC §4.4)
        held, line = self._batches.answer(message)
        if line is not None:
            await self.send_line(line)
        elif not held:
            await super().send(item)
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._requests.answered(message.id)
            if isinstance(message, types.JSONRPCResponse):
                self._session.saw_answer(message.result)


def _store_mismatch(mine: Path, expected: object) -> str | None:
    served = os.path.realpath(mine)
    if isinstance(expected, str) and os.path.realpath(expected) == served:
        return None
    return (
        f"it serves the store {served}, not {expected}; two projects' configurations name the same "
        "socket: give each its own 'socket.path'"
    )


class SocketServer:
    def __init__(self, service: Service, path: Path, *, owner: str = "", fast_path: bool = True) -> None:
        self.service = service
        self.path = path
        self.fast_path = fast_path  # off only to compare the two paths (tests/daemon/test_parity.py)
        self.sessions = Sessions(
            lambda uri: resources.fingerprint(service, uri),
            open_conflicts=service.open_conflicts,
            serving=lambda: not service.draining,
        )
        self.mcp = build_mcp_server(service, self.sessions)
        service.store.add_listener(self.sessions.changed)
        if service.replicator is not None:
            service.replicator.state_listeners.append(self.sessions.sync_state)
        self._lock = SocketLock(path, owner)
        # The (device, inode) of the socket file this server bound: the only one it may remove.
        self._bound: tuple[int, int] | None = None
        self._server: asyncio.Server | None = None
        self._closed = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.answers = Answers()

    async def start(self, listening: tuple[socket.socket, SocketLock, tuple[int, int]] | None = None) -> None:
        """Serve on the socket, binding it now or adopting one bound early (``listener.listen``)."""
        if listening is not None:
            sock, self._lock, self._bound = listening
            self._server = await asyncio.start_unix_server(self._on_connection, sock=sock, limit=MAX_REQUEST_BYTES)
            return
        problem = socket_path_problem(self.path)
        if problem is not None:
            raise ConfigError("socket.path", problem)
        prepare_socket_dir(self.path)
        self._lock.acquire()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # stale: we hold the lock, so no live daemon owns it
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._on_connection, self.path, limit=MAX_REQUEST_BYTES)
        except OSError as exc:
            self._lock.release()
            raise ConfigError("socket.path", f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        st = os.stat(self.path)
        self._bound = (st.st_dev, st.st_ino)
        os.chmod(self.path, 0o600)

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Accept connections until ``stop_accepting``; each connection runs in its own task."""
        if self._server is None:
            await self.start()
        task_status.started()
        try:
            await self._closed.wait()
            # Not accepting any more: open connections carry on until they end or we are cancelled.
            while self._connections:
                await asyncio.wait(set(self._connections))
        except BaseException:
            # Cancelled (shutdown): connections still open end with the daemon.
            for task in list(self._connections):
                task.cancel()
            raise

    async def stop_accepting(self) -> None:
        """Close the listening socket; connections already open keep being served."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._closed.set()
        self._remove_socket()

    def _remove_socket(self) -> None:
        """Remove the socket file only if it is the one this server bound (never another daemon's)."""
        bound, self._bound = self._bound, None
        if bound is None:
            return
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == bound:
                self.path.unlink()

    async def close(self) -> None:
        await self.stop_accepting()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        self.sessions.close()
        self._lock.release()

    async def _same_store(self, expected: object, writer: LineWriter) -> bool:
        """Answer a client that names the store it expects; refuse one that expects another."""
        problem = _store_mismatch(self.service.store.path, expected)
        if problem is not None:
            log.warning("refused a client: %s", problem)
        answer = {"ok": True} if problem is None else {"error": problem}
        await writer.send_line(HELLO_PREFIX + json.dumps(answer).encode() + b"\n")
        return problem is None

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            # Shutdown ends this top-level connection task; ending it normally (not "cancelled")
            # keeps asyncio's stream callback from logging the cancellation as an error.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, stream_reader: asyncio.StreamReader, stream_writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(stream_writer.get_extra_info("socket"))
        if uid is not None and uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            return
        self.connections += 1
        requests = _Requests(self.answers)
        batches = Batches()
        session = Session()
        reader = _CountingReader(stream_reader, requests, session, batches)
        writer = _CountingWriter(stream_writer, requests, session, batches)
        session.writer = writer
        reader.reply = writer  # set before the first line: an over-long one is answered too
        try:
            hello = await reader.preamble()
            client = hello.get("client")
            CONNECTION_CLIENT.set(str(client)[:100] if client else None)
            if "store" in hello and not await self._same_store(hello["store"], writer):
                return
            CURRENT.set(session)
            self.sessions.add(session)
            fast = FastToolCalls(self.service, writer, requests, CONNECTION_CLIENT.get)
            if self.fast_path:
                reader.intercept = fast
            try:
                await self.mcp.run(reader, writer, self.mcp.create_initialization_options())
                await fast.finish()
            finally:
                fast.cancel()
        except Exception:
            # One connection's failure closes that connection, never the daemon's listener.
            log.exception("connection failed; closed it")
        finally:
            self.sessions.remove(session)
            self.connections -= 1
            requests.close()
