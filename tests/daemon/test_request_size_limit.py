"""Issue 6 item 7, SPEC §4.2: a request line over the size limit is answered with a JSON-RPC error
for its id (null when it cannot be read) and logged; the connection carries on.

Before: the daemon's reader hit its line limit and treated it as the end of the stream, so the
connection just closed and every request on it went unanswered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fuzz_support import RawSession, strict_json
from mcp_support import module_daemon

from daemon_support import DaemonProcess
from statusd.daemon.oversize import request_id
from statusd.limits import MAX_REQUEST_BYTES

PADDING = "x" * (MAX_REQUEST_BYTES + 10)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    yield from module_daemon(tmp_path_factory)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"x":"PAD"}}', 7),  # Python SDK order
        ('{"method":"tools/call","params":{"x":"PAD"},"jsonrpc":"2.0","id":"ts-9"}', "ts-9"),  # TypeScript SDK
        ('{"params":{"id":1,"x":"PAD"},"jsonrpc":"2.0","id":8,"method":"m"}', 8),  # a nested "id" is not it
        ('{"params":{"x":"PAD","id":1}}', None),  # only a nested one
        ('{"jsonrpc":"2.0","method":"m","params":{"x":"PAD"}}', None),  # a notification
        ('{"x":"\\"id\\":3,PAD"}', None),  # inside a string
        ('{"method":"m","params":{"x":"PAD \\" \\\\"},"id":5}', 5),  # escaped quote and backslash
        ('{"x":"PAD","y":"\\"id\\":4"}', None),  # inside a string, seen from the end
        ("PAD", None),
    ],
)
def test_the_id_is_read_from_either_end(line: str, expected: object) -> None:
    data = line.replace("PAD", PADDING).encode()
    assert request_id(data[:65536], data[-65536:]) == expected


def oversized(rid: object, *, id_last: bool = False) -> str:
    params = json.dumps({"name": "create_work_item", "arguments": {"item_type": "task", "title": PADDING}})
    if id_last:
        return f'{{"method":"tools/call","params":{params},"jsonrpc":"2.0","id":{json.dumps(rid)}}}'
    return f'{{"jsonrpc":"2.0","id":{json.dumps(rid)},"method":"tools/call","params":{params}}}'


def too_large(answer: dict[str, object] | None) -> None:
    assert answer is not None and "error" in answer, answer
    error = answer["error"]
    assert isinstance(error, dict) and error["code"] == -32600, error
    assert "request too large" in error["message"] and error["data"] == {"limit": MAX_REQUEST_BYTES}


async def test_an_oversized_request_gets_an_error_for_its_id_and_the_session_goes_on(daemon: DaemonProcess) -> None:
    async with RawSession.connect(daemon.socket_path, 30.0) as raw:
        too_large(await raw.send_line(oversized(41), 41))
        too_large(await raw.send_line(oversized("ts-42", id_last=True), "ts-42"))
        unreadable = await raw.send_line("[" * 10 + PADDING, "no id to read", null_ok=True)
        too_large(unreadable)
        assert unreadable is not None and unreadable["id"] is None
        assert (await raw.trivial_call())["success"] is True
    assert "refused a request of" in daemon.log() and "(id 41)" in daemon.log()
    assert daemon.alive()


async def test_the_first_line_oversized_is_answered_too(daemon: DaemonProcess) -> None:
    reader, writer = await asyncio.open_unix_connection(daemon.socket_path, limit=1 << 20)
    try:
        writer.write(oversized("first").encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(30):
            answer = strict_json(await reader.readline())
        too_large(answer)
        assert answer["id"] == "first"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_largest_valid_requests_stay_well_under_the_limit(daemon: DaemonProcess) -> None:
    async with daemon.client() as c:
        description = "d" * 20_000
        metadata = {f"k{n}": "v" * 7_000 for n in range(9)}
        item = await c.call(
            "create_work_item", item_type="task", title="big", description=description, metadata=metadata
        )
        assert item["metadata"] == metadata
