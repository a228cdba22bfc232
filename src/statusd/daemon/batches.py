"""JSON-RPC batches (protocol version 2025-03-26): split into messages, answered as one array.

The SDK serves messages one at a time; a batch line is split into its elements for it, and the
answers to the batch's requests are held until the last one is ready, then written together in
the batch's order of completion (JSON-RPC lets a batch answer come in any order). Elements that
are not valid messages are answered inside the same array; a batch of notifications gets no answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.shared.message import SessionMessage


@dataclass
class _Batch:
    waiting: set[Any] = field(default_factory=set)
    answers: list[bytes] = field(default_factory=list)


def error_answer(ident: Any, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=ident, error=types.ErrorData(code=code, message=message))


def _dump(message: types.JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def readable_id(raw: Any) -> int | str | None:
    ident = raw.get("id") if isinstance(raw, dict) else None
    return None if isinstance(ident, bool) or not isinstance(ident, int | str) else ident


def parse_message(raw: Any) -> types.JSONRPCMessage:
    """One decoded JSON value as a JSON-RPC message (ValueError when it is not one)."""
    json.dumps(raw, ensure_ascii=False).encode()  # no lone surrogates: nothing could store or echo them
    return types.jsonrpc_message_adapter.validate_python(raw, by_name=False)


class Batches:
    """One connection's batches whose requests are not all answered yet."""

    def __init__(self) -> None:
        self._by_id: dict[Any, _Batch] = {}

    def split(self, elements: list[Any]) -> tuple[list[SessionMessage], bytes | None]:
        """The messages to serve, and the answer line to write now (all-invalid batch), if any."""
        batch = _Batch()
        messages: list[SessionMessage] = []
        for element in elements:
            try:
                message = parse_message(element)
            except (ValueError, RecursionError) as exc:
                detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                answer = error_answer(
                    readable_id(element), types.INVALID_REQUEST, f"invalid message in batch: {detail}"
                )
                batch.answers.append(_dump(answer))
                continue
            if isinstance(message, types.JSONRPCRequest):
                if message.id in self._by_id or message.id in batch.waiting:
                    duplicate = error_answer(message.id, types.INVALID_REQUEST, "duplicate request id in flight")
                    batch.answers.append(_dump(duplicate))
                    continue
                batch.waiting.add(message.id)
            messages.append(SessionMessage(message))
        for ident in batch.waiting:
            self._by_id[ident] = batch
        if batch.waiting or not batch.answers:
            return messages, None
        return messages, _line(batch.answers)

    def answer(self, message: types.JSONRPCMessage) -> tuple[bool, bytes | None]:
        """``(held, line)``: whether ``message`` belongs to a batch, and the batch's answer once complete."""
        if not isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            return False, None
        batch = self._by_id.pop(message.id, None) if message.id is not None else None
        if batch is None:
            return False, None
        batch.answers.append(_dump(message))
        return True, self._complete(batch, message.id)

    def cancelled(self, ident: Any) -> bytes | None:
        """A batch request the client cancelled is never answered; the rest of its batch still is."""
        batch = self._by_id.pop(ident, None)
        return None if batch is None else self._complete(batch, ident)

    @staticmethod
    def _complete(batch: _Batch, ident: Any) -> bytes | None:
        batch.waiting.discard(ident)
        if batch.waiting or not batch.answers:
            return None
        return _line(batch.answers)


def _line(answers: list[bytes]) -> bytes:
    return b"[" + b",".join(answers) + b"]\n"
