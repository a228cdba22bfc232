"""MCP stdio framing (newline-delimited JSON-RPC) directly on a byte stream.

The SDK's own stdio transport relays through memory streams and two extra tasks; reading and
writing the socket inside ``receive``/``send`` removes those hops, which is most of the per-call
transport cost (SPEC §13). Both the daemon and :mod:`statusd.client` use these adapters.
"""

from __future__ import annotations

import contextlib
import json
from types import TracebackType
from typing import Any, Self

import anyio
import mcp_types as types
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.shared.message import SessionMessage

MAX_LINE = 16 * 1024 * 1024
HELLO_PREFIX = b"#statusd "


class LineReader:
    """Read newline-delimited JSON-RPC messages as ``SessionMessage`` objects."""

    def __init__(self, stream: ByteStream) -> None:
        self._buffered = BufferedByteReceiveStream(stream)
        self._pending: bytes | None = None
        # Where to answer a request that cannot be parsed (the daemon sets it; clients do not).
        self.reply: LineWriter | None = None

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
        try:
            return await self._buffered.receive_until(b"\n", MAX_LINE)
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return None

    async def receive(self) -> SessionMessage | Exception:
        while True:
            if self._pending is not None:
                line: bytes | None = self._pending
                self._pending = None
            else:
                try:
                    line = await self._buffered.receive_until(b"\n", MAX_LINE)
                except (anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    raise anyio.EndOfStream from None
                except anyio.DelimiterNotFound:
                    return ValueError(f"message longer than {MAX_LINE} bytes")
            if line is None:
                raise anyio.EndOfStream
            if not line.strip():
                continue
            try:
                return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
            except Exception as exc:
                message = await self._salvage(line, exc)
                if message is not None:
                    return message
                return exc  # the SDK logs and skips it; the connection stays up

    async def _salvage(self, line: bytes, error: Exception) -> SessionMessage | None:
        """Read what the SDK's parser refused, or answer it with a JSON-RPC error.

        The SDK's parser stops at about 200 levels of nesting and at lone surrogate escapes, and
        the SDK drops a message it cannot parse without answering, so its sender would wait
        forever. Python's parser reads both: a deeply nested request goes on (the argument models
        bound nesting); anything else is answered here, for its id when one can be read.
        """
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError):
            raw = None
        request_id = raw.get("id") if isinstance(raw, dict) and "method" in raw else None
        if isinstance(request_id, bool) or not isinstance(request_id, int | str):
            request_id = None
        if raw is not None:
            try:
                json.dumps(raw, ensure_ascii=False).encode()  # no lone surrogates: nothing could store or echo them
                return SessionMessage(types.jsonrpc_message_adapter.validate_python(raw, by_name=False))
            except (ValueError, RecursionError) as exc:
                error = exc
        if self.reply is not None and (request_id is not None or raw is None):
            detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            code = types.PARSE_ERROR if raw is None else types.INVALID_REQUEST
            answer = types.JSONRPCError(
                jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=f"unreadable request: {detail}")
            )
            await self.reply.send(SessionMessage(answer))
        return None

    async def aclose(self) -> None:
        await self._buffered.aclose()

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

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        # Answers to concurrent requests are sent from concurrent tasks; a socket stream refuses a
        # second writer (BusyResourceError) while a large answer waits for buffer space.
        self._lock = anyio.Lock()

    async def send(self, item: SessionMessage, /) -> None:
        data = item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
        # A peer that went away ends the session on the reader side.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            async with self._lock:
                await self._stream.send(data)

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return None
