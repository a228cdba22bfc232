"""Answer ``tools/call`` without the SDK's request dispatch: the hot path of every tool call.

The official SDK still runs each session — initialize, ``tools/list``, ping, cancellation, the
modern per-request era — but once a legacy session has completed its handshake, a ``tools/call``
line is parsed with ``json`` and answered by :class:`~statusd.daemon.service.Service` directly,
with the same JSON-RPC result the SDK would write (tests/daemon/test_parity.py compares the bytes).
Measured on the benchmark machine the SDK's dispatch and serialisation were ~75% of a 0.8 ms
round trip (SPEC §13 calls that overhead ours to remove). Anything the fast path is unsure about
— an unknown tool, malformed params — goes to the SDK unchanged, which then produces the
protocol's own answers. A ``notifications/cancelled`` for a call answered here
cancels it here: no answer is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from statusd.daemon.service import Service
from statusd.daemon.sessions import ProgressNotices
from statusd.daemon.tools import TOOLS
from statusd.daemon.transport import LineWriter
from statusd.limits import compact_json, finite_answer

log = logging.getLogger(__name__)


class RequestLedger(Protocol):
    cancelled: set[Any]  # ids the client cancelled while they were open: never answered

    def opened(self, ident: Any) -> None: ...
    def answered(self, ident: Any) -> None: ...


def encode_result(ident: int | str, payload: dict[str, Any], is_error: bool) -> bytes:
    text, _ = finite_answer(payload)  # standard JSON: never Infinity or NaN
    # Key order as the SDK writes it (its per-version result models sort their fields): the parity
    # test in tests/daemon/test_parity.py fails if an SDK upgrade changes it. ``structuredContent``
    # is the payload's JSON text itself (same separators and options), so the payload is encoded
    # once rather than twice: a 99-node subtree answer is ~37 KB and each encoding ~0.2 ms.
    head = compact_json({"jsonrpc": "2.0", "id": ident})[:-1]
    content = compact_json([{"text": text, "type": "text"}])
    flag = "true" if is_error else "false"
    return f'{head},"result":{{"content":{content},"isError":{flag},"structuredContent":{text}}}}}\n'.encode()


def _lone_surrogate(*texts: object) -> bool:
    """Whether a string can not be encoded (a lone surrogate; arguments are checked by the service)."""
    for text in texts:
        if isinstance(text, str):
            try:
                text.encode()
            except UnicodeEncodeError:
                return True
    return False


def _parsed(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


class FastToolCalls:
    """``LineReader.intercept`` for one connection."""

    def __init__(
        self,
        service: Service,
        writer: LineWriter,
        ledger: RequestLedger,
        client_override: Callable[[], str | None],
    ) -> None:
        self.service = service
        self.writer = writer
        self.ledger = ledger
        # Plain asyncio tasks: anyio's start_soon cost ~27 µs more per call, on a 0.5 ms budget.
        self.tasks: dict[int | str, asyncio.Task[None]] = {}
        self.client_override = client_override
        self.declared_client: str | None = None
        self.ready = False

    def __call__(self, line: bytes) -> bool:
        if not self.ready:
            self._watch_handshake(line)
            return False
        if b'"tools/call"' not in line:
            if b'"notifications/cancelled"' in line:
                self._cancel(_parsed(line))  # the SDK sees it too: it cancels what it is running itself
            return False
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            return False
        if not isinstance(msg, dict) or msg.get("method") != "tools/call" or msg.get("jsonrpc") != "2.0":
            if isinstance(msg, dict) and msg.get("method") == "notifications/cancelled":
                self._cancel(msg)  # its reason mentions tools/call
            return False
        ident = msg.get("id")
        params = msg.get("params")
        if isinstance(ident, bool) or not isinstance(ident, int | str) or not isinstance(params, dict):
            return False
        name = params.get("name")
        arguments = params.get("arguments")
        if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
            return False  # the SDK answers malformed params with the protocol's error
        if name not in TOOLS or ident in self.tasks:
            return False  # unknown tool (-32602) and a reused id are the SDK's to answer
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if not (token is None or (isinstance(token, int | str) and not isinstance(token, bool))):
            token = None
        if (b"\\ud" in line or b"\\uD" in line) and _lone_surrogate(name, ident, token):
            return False  # unanswerable as a tool result: the transport answers with a JSON-RPC error
        self.ledger.opened(ident)
        task = asyncio.get_running_loop().create_task(self._answer(ident, name, arguments, token))
        self.tasks[ident] = task
        task.add_done_callback(lambda _: self._done(ident, task))
        return True

    def _done(self, ident: int | str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(ident) is task:
            del self.tasks[ident]
        self.ledger.answered(ident)  # also when cancelled before it ever ran

    def _cancel(self, msg: Any) -> None:
        try:
            ident = msg["params"]["requestId"]
        except (KeyError, TypeError):
            return
        if isinstance(ident, int | str) and not isinstance(ident, bool):
            task = self.tasks.get(ident)
            if task is not None:
                task.cancel()  # its answer is never written; work stops at its next await

    def _watch_handshake(self, line: bytes) -> None:
        """Learn the declared client name, and go fast once the legacy handshake is complete."""
        if b'"initialize"' in line:
            try:
                msg = json.loads(line)
                info = msg["params"]["clientInfo"]
                name = info.get("name") if isinstance(info, dict) else None
                self.declared_client = str(name)[:100] if name else None
            except (ValueError, RecursionError, KeyError, TypeError):
                pass
        elif b'"notifications/initialized"' in line:
            self.ready = True

    async def _answer(
        self, ident: int | str, name: str, arguments: dict[str, Any] | None, token: int | str | None = None
    ) -> None:
        try:
            progress = ProgressNotices(self.writer, token) if token is not None else None
            client = self.client_override() or self.declared_client
            outcome = await self.service.call(name, arguments, client=client, progress=progress)
            if progress is not None:
                await progress.flush()  # every progress notification goes out before the result
            if ident in self.ledger.cancelled:
                self.ledger.cancelled.discard(ident)
                return  # cancelled after its work was done: still never answered
            await self.writer.send_line(encode_result(ident, outcome.payload, outcome.is_error))
        except Exception:
            # As for a failure inside the SDK's session: this connection ends, the daemon serves on.
            log.exception("answering request %r failed; closing the connection", ident)
            self.writer.close()

    async def finish(self) -> None:
        """Wait for the answers still being prepared (the session's reader has ended)."""
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def cancel(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()

