"""daemon/transport.py directly: newline-JSON framing on a real socket pair, no daemon."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from statusd.daemon.transport import HELLO_PREFIX, LineReader, LineWriter


@asynccontextmanager
async def pipe() -> AsyncIterator[tuple[LineReader, LineWriter, asyncio.StreamReader, asyncio.StreamWriter]]:
    """Our reader/writer on one end of a Unix socket pair; raw streams on the other."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r1, w1 = await asyncio.open_unix_connection(sock=ours)
    r2, w2 = await asyncio.open_unix_connection(sock=theirs)
    try:
        yield LineReader(r1), LineWriter(w1), r2, w2
    finally:
        for w in (w1, w2):
            w.close()
            await w.wait_closed()


REQUEST = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "sync_status", "arguments": {}}}


async def send(w: asyncio.StreamWriter, data: bytes) -> None:
    w.write(data)
    await w.drain()


async def test_hello_line_is_read_once_and_a_plain_first_line_is_kept() -> None:
    async with pipe() as (reader, _, _, peer):
        await send(peer, HELLO_PREFIX + b'{"client": "bridge-x"}\n')
        assert await reader.preamble() == {"client": "bridge-x"}
    async with pipe() as (reader, _, _, peer):
        await send(peer, json.dumps(REQUEST).encode() + b"\n")
        assert await reader.preamble() == {}
        message = await reader.receive()  # the first line was not lost
        assert isinstance(message, SessionMessage)
        assert isinstance(message.message, types.JSONRPCRequest) and message.message.id == 7


async def test_blank_lines_are_skipped_and_eof_ends_the_stream() -> None:
    async with pipe() as (reader, _, _, peer):
        await send(peer, b"\n  \n" + json.dumps(REQUEST).encode() + b"\n")
        peer.write_eof()
        first = await reader.receive()
        assert isinstance(first, SessionMessage)
        with pytest.raises(anyio.EndOfStream):
            await reader.receive()


async def test_the_fast_path_takes_the_lines_it_answers() -> None:
    async with pipe() as (reader, _, _, peer):
        taken: list[bytes] = []

        def fast_path(line: bytes) -> bool:
            taken.append(line)
            return b'"tools/call"' in line

        reader.intercept = fast_path
        ping = {"jsonrpc": "2.0", "id": 8, "method": "ping"}
        await send(peer, json.dumps(REQUEST).encode() + b"\n" + json.dumps(ping).encode() + b"\n")
        message = await reader.receive()
        assert isinstance(message, SessionMessage) and message.message.id == 8
        assert len(taken) == 2 and b"tools/call" in taken[0]


async def test_unreadable_lines_are_answered_for_their_id_or_with_null() -> None:
    async with pipe() as (reader, writer, peer_in, peer):
        reader.reply = writer
        bad_request = {"jsonrpc": "2.0", "id": "q1", "method": 5}  # readable id, not a valid request
        await send(peer, b"this is not json\n" + json.dumps(bad_request).encode() + b"\n")
        peer.write_eof()
        for _ in range(2):
            assert isinstance(await reader.receive(), Exception)  # handed to the SDK, which skips it
        first = json.loads(await peer_in.readline())
        second = json.loads(await peer_in.readline())
        assert first["id"] is None and first["error"]["code"] == types.PARSE_ERROR
        assert second["id"] == "q1" and second["error"]["code"] == types.INVALID_REQUEST
        assert second["error"]["message"].startswith("unreadable request")


async def test_nesting_past_the_sdk_parser_is_still_read() -> None:
    deep: object = "leaf"
    for _ in range(400):
        deep = {"k": deep}
    request = {**REQUEST, "params": {"name": "create_vendor", "arguments": {"name": "v", "metadata": deep}}}
    async with pipe() as (reader, _, _, peer):
        await send(peer, json.dumps(request).encode() + b"\n")
        message = await reader.receive()
        assert isinstance(message, SessionMessage) and message.message.id == 7


async def test_the_writer_sends_one_json_line_per_message_and_ignores_a_gone_peer() -> None:
    async with pipe() as (_, writer, peer_in, _):
        answer = types.JSONRPCResponse(jsonrpc="2.0", id=3, result={"ok": True})
        await writer.send(SessionMessage(answer))
        line = await peer_in.readline()
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert json.loads(line) == {"jsonrpc": "2.0", "id": 3, "result": {"ok": True}}
        writer.close()
        await writer.send(SessionMessage(answer))  # no error: the reader side ends the session
