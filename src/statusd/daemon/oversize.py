"""Request lines over the size limit: skip them with bounded memory and recover their id.

A request longer than ``statusd.limits.MAX_REQUEST_BYTES`` is never parsed. Its first and last
``KEEP`` bytes are kept so the JSON-RPC id can be read (the Python SDK writes ``id`` near the
start, the TypeScript SDK near the end), and the caller answers with an error for that id
(SPEC §4.2), or for a null id when none can be read.
"""

from __future__ import annotations

import asyncio
import json
import re

KEEP = 64 * 1024

# An id value: an integer or a short string (a longer one is not worth echoing).
_ID_VALUE = rb'(-?\d{1,18}(?![\d.eE])|"(?:[^"\\]|\\.){0,200}")'
_AFTER_KEY = re.compile(rb"\s*:\s*" + _ID_VALUE)


async def skip_line(stream: asyncio.StreamReader, consumed: int) -> tuple[bytes, bytes, int]:
    """Consume the rest of an over-long line; return its first and last ``KEEP`` bytes and its size.

    ``consumed`` comes from the ``LimitOverrunError`` that ``readuntil`` raised: that many bytes can
    be read without passing the newline.
    """
    head, tail, size = bytearray(), b"", 0

    def keep(chunk: bytes) -> None:
        nonlocal tail, size
        if len(head) < KEEP:
            head.extend(chunk[: KEEP - len(head)])
        tail = (tail + chunk[-KEEP:])[-KEEP:]
        size += len(chunk)

    while True:
        try:
            keep(await stream.readexactly(consumed))
            keep(await stream.readuntil(b"\n"))
            return bytes(head), tail, size
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed
        except asyncio.IncompleteReadError as exc:  # the peer stopped mid-line: answer what we saw
            keep(exc.partial)
            return bytes(head), tail, size


def request_id(head: bytes, tail: bytes) -> int | str | None:
    """The top-level ``"id"`` of a JSON-RPC request seen only at its two ends, or None."""
    found = _id_at_top_level(head)
    return found if found is not None else _id_from_end(tail)


def _id_at_top_level(head: bytes) -> int | str | None:
    depth, i, n = 0, 0, len(head)
    while i < n:
        c = head[i]
        if c == 0x22:  # a string: a key when followed by ":"
            end = _string_end(head, i)
            if end < 0:
                return None
            if depth == 1 and head[i:end] == b'"id"':
                match = _AFTER_KEY.match(head, end)
                if match:
                    return _decode(match.group(1))
            i = end
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
        i += 1
    return None


def _id_from_end(tail: bytes) -> int | str | None:
    """Walk back from the closing brace: a string ends at an unescaped quote, read backwards too."""
    data = tail.rstrip(b" \t\r\n")
    depth, i = 0, len(data) - 1
    while i >= 0:
        c = data[i]
        if c == 0x22:
            start = _string_start(data, i)
            if start < 0:
                return None
            if depth == 1 and data[start : i + 1] == b'"id"':
                match = _AFTER_KEY.match(data, i + 1)
                if match:
                    return _decode(match.group(1))
            i = start - 1
            continue
        if c in b"}]":
            depth += 1
        elif c in b"{[":
            depth -= 1
            if depth <= 0:
                return None  # back at the start of the top-level value
        i -= 1
    return None


def _string_start(data: bytes, end: int) -> int:
    j = end - 1
    while j >= 0:
        if data[j] == 0x22 and not _escaped(data, j):
            return j
        j -= 1
    return -1


def _escaped(data: bytes, j: int) -> bool:
    backslashes = 0
    while j - backslashes - 1 >= 0 and data[j - backslashes - 1] == 0x5C:
        backslashes += 1
    return backslashes % 2 == 1


def _string_end(data: bytes, start: int) -> int:
    """Index just past the string literal opening at ``start``, or -1 when it runs off the end."""
    i = start + 1
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash: skip the escaped character
            i += 2
            continue
        if c == 0x22:
            return i + 1
        i += 1
    return -1


def _decode(token: bytes) -> int | str | None:
    try:
        value = json.loads(token)
    except ValueError:
        return None
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None
