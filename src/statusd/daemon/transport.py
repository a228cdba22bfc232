"""MCP stdio framing (newline-delimited JSON-RPC) directly on a byte stream.

The SDK's own stdio transport relays through memory streams and two extra tasks; reading and
writing the socket inside ``receive``/``send`` removes those hops, which is most of the per-call
transport cost (SPEC §13). Both the daemon and :mod:`statusd.client` use these adapters.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

from statusd.daemon import oversize
from statusd.limits import MAX_REQUEST_BYTES

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024 * 1024
HELLO_PREFIX = b"#statusd "


async def open_unix(path: str) -> tuple[LineReader, LineWriter]:
    """Connect to a daemon socket (asyncio streams: no per-read selector churn, unlike anyio's)."""
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_LINE)
    return LineReader(reader), LineWriter(writer)


class LineReader:
    """Read newline-delimited JSON-RPC messages as ``SessionMessage`` objects."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        self._pending: bytes | None = None
        # Messages already read and still to be served (the elements of a batch).
        self.queued: collections.deque[SessionMessage] = collections.deque()
        # Where to answer a request that cannot be parsed (the daemon sets it; clients do not).
        self.reply: LineWriter | None = None
        # The daemon's fast path: a line it answers itself never reaches the SDK.
        self.intercept: Callable[[bytes], bool] | None = None

    async def preamble(self) -> dict[str, Any]:
        """Read the first line; return the bridge's hello if it is one, else keep the line for receive()."""
        line = await self._read_line()
        if line is not None and line.startswith(HELLO_PREFIX):
            # ``statusd mcp --client NAME`` sends this one line first; MCP clients never do.
            try:
                hello = json.loads(line[len(HELLO_PREFIX) :])
            except ValueError:
                hello = None
            return hello if isinstance(hello, dict) else {}
        self._pending = line
        return {}

    async def _read_line(self) -> bytes | None:
        """The next line, or None at the end of the stream.

        The daemon answers a line over its size limit and reads on; for a client (no ``reply``) an
        answer over ``MAX_LINE`` ends the session.
        """
        while True:
            try:
                return await self._stream.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                if self.reply is None:
                    return None
                await self._refuse_oversized(exc.consumed)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None

    async def _refuse_oversized(self, consumed: int) -> None:
        assert self.reply is not None
        head, tail, size = await oversize.skip_line(self._stream, consumed)
        ident = oversize.request_id(head, tail)
        log.warning("refused a request of %d bytes (id %r): the limit is %d bytes", size, ident, MAX_REQUEST_BYTES)
        message = f"request too large: {size} bytes; the limit is {MAX_REQUEST_BYTES} bytes"
        error = types.ErrorData(code=types.INVALID_REQUEST, message=message, data={"limit": MAX_REQUEST_BYTES})
        await self.reply.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=ident, error=error)))

    async def receive(self) -> SessionMessage | Exception:
        while True:
            if self.queued:
                return self.queued.popleft()
            if self._pending is not None:
                line: bytes | None = self._pending
                self._pending = None
            else:
                line = await self._read_line()
            if line is None:
                raise anyio.EndOfStream
            if not line.strip():
                continue
            if self.intercept is not None and self.intercept(line):
                continue
            try:
                message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                if isinstance(message, types.JSONRPCNotification) and b'"id"' in line and self._has_id(line):
                    # A request whose id is not a string or number parses as a notification (extra
                    # members are allowed) and would go unanswered: it is an invalid request.
                    raise ValueError("id must be a string or a number")
                return SessionMessage(message)
            except Exception as exc:
                salvaged = await self._salvage(line, exc)
                if salvaged is not None:
                    return salvaged
                if self.queued:
                    continue
                return exc  # the SDK logs and skips it; the connection stays up

    @staticmethod
    def _has_id(line: bytes) -> bool:
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError):
            return False
        return isinstance(raw, dict) and "id" in raw

    async def _salvage(self, line: bytes, error: Exception) -> SessionMessage | None:
        """Read what the SDK's parser refused, or answer it with a JSON-RPC error.

        The SDK's parser stops at about 200 levels of nesting and at lone surrogate escapes, and
        the SDK drops a message it cannot parse without answering, so its sender would wait
        forever. Python's parser reads both: a deeply nested request goes on (the argument models
        bound nesting); anything else is answered here (the daemon's side), for its id when one
        can be read: ``-32700`` for what is not JSON, ``-32600`` for JSON that is not a message.
        """
        try:
            raw = json.loads(line)
            parsed = True
        except (ValueError, RecursionError):
            raw, parsed = None, False
        request_id = raw.get("id") if isinstance(raw, dict) and "method" in raw else None
        if isinstance(request_id, bool) or not isinstance(request_id, int | str):
            request_id = None
        if parsed:
            try:
                json.dumps(raw, ensure_ascii=False).encode()  # no lone surrogates: nothing could store or echo them
                message = types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
                if isinstance(message, types.JSONRPCNotification) and isinstance(raw, dict) and "id" in raw:
                    raise ValueError("id must be a string or a number")
                return SessionMessage(message)
            except (ValueError, RecursionError) as exc:
                error = exc
        if self.reply is not None:
            # Every unreadable message is answered (JSON-RPC: id null when its id cannot be read).
            detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            code = types.INVALID_REQUEST if parsed else types.PARSE_ERROR
            answer = types.JSONRPCError(
                jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=f"unreadable request: {detail}")
            )
            await self.reply.send(SessionMessage(answer))
        return None

    async def aclose(self) -> None:
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return None


class LineWriter:
    """Write ``SessionMessage`` objects as newline-terminated JSON."""

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self._stream = stream
        # Answers to concurrent requests are sent from concurrent tasks; one drains at a time.
        self._lock = asyncio.Lock()

    async def send(self, item: SessionMessage, /) -> None:
        await self.send_line(item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")

    async def send_line(self, data: bytes) -> None:
        """Send one already-encoded message (``data`` ends with a newline)."""
        # A peer that went away ends the session on the reader side.
        if self._stream.is_closing():
            return
        async with self._lock:
            with contextlib.suppress(ConnectionError):
                self._stream.write(data)
                await self._stream.drain()

    def close(self) -> None:
        self._stream.close()

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return None
