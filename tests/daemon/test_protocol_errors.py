"""Protocol errors exactly as SPEC §4.4 says, on the real socket server (fast path on and off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statusd.client import NotFoundError, StatusdClient
from surface_support import RawClient, raw_client, serving

INVALID_REQUEST = -32600
PARSE_ERROR = -32700
INVALID_PARAMS = -32602


@pytest.fixture(params=[True, False], ids=["fast-path", "sdk-path"])
async def client(request: pytest.FixtureRequest, tmp_path: Path):
    async with serving(tmp_path / "store.sqlite3", fast_path=request.param) as server, raw_client(server.path) as c:
        yield c


async def test_unknown_tool_is_invalid_params_not_a_tool_result(client: RawClient):
    await client.initialize()
    answer = await client.request(1, "tools/call", {"name": "no_such_tool", "arguments": {}})
    assert "result" not in answer
    assert answer["error"]["code"] == INVALID_PARAMS
    assert "no_such_tool" in answer["error"]["message"]


@pytest.mark.parametrize("method", ["tools/list", "resources/list", "resources/templates/list", "prompts/list"])
async def test_a_cursor_never_handed_out_is_invalid_params(client: RawClient, method: str):
    await client.initialize()
    answer = await client.request(1, method, {"cursor": "not-a-cursor"})
    assert answer["error"]["code"] == INVALID_PARAMS
    assert (await client.request(2, method))["result"], "the first page itself is served"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"[]\n", INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}\n', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":[1],"method":"tools/list"}\n', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","method":5}\n', INVALID_REQUEST),
        (b"42\n", INVALID_REQUEST),
        (b"null\n", INVALID_REQUEST),
        (b"{not json\n", PARSE_ERROR),
        (b'{"jsonrpc":"2.0","id":3,"method":"ping"\n', PARSE_ERROR),
    ],
    ids=["empty-batch", "object-id", "array-id", "numeric-method", "number", "null", "garbage", "truncated"],
)
async def test_every_unreadable_message_is_answered_with_id_null(client: RawClient, line: bytes, code: int):
    await client.initialize()
    await client.send(raw=line)
    answer = json.loads(await client.next_line())
    assert answer["id"] is None
    assert answer["error"]["code"] == code
    # The connection serves on.
    assert (await client.request(9, "ping"))["result"] == {}


async def test_an_invalid_request_with_a_readable_id_is_answered_for_that_id(client: RawClient):
    await client.initialize()
    await client.send(raw=b'{"jsonrpc":"1.0","id":17,"method":"ping"}\n')
    answer = json.loads(await client.next_line())
    assert (answer["id"], answer["error"]["code"]) == (17, INVALID_REQUEST)


async def test_batches_are_served_as_one_array_in_a_2025_03_26_session(client: RawClient):
    await client.initialize("2025-03-26")
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sync_status", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "no_such_tool"}},
        7,
    ]
    await client.send(batch)
    answers = json.loads(await client.next_line())
    assert isinstance(answers, list), answers
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert set(by_id) == {1, 2, 3}, "one answer per request, none for the notification"
    assert by_id[1]["result"] == {}
    assert by_id[2]["result"]["structuredContent"]["mode"] == "standalone"
    assert by_id[3]["error"]["code"] == INVALID_PARAMS
    invalid = [a for a in answers if a["id"] is None]
    assert len(invalid) == 1 and invalid[0]["error"]["code"] == INVALID_REQUEST


async def test_a_batch_of_notifications_gets_no_answer(client: RawClient):
    await client.initialize("2025-03-26")
    await client.send([{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}])
    # The next line is the answer to the ping sent after it: nothing came for the batch.
    await client.send({"jsonrpc": "2.0", "id": 5, "method": "ping"})
    assert json.loads(await client.next_line()) == {"jsonrpc": "2.0", "id": 5, "result": {}}


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25"])
async def test_batches_are_refused_where_the_protocol_version_has_none(client: RawClient, version: str):
    answer = await client.initialize(version)
    assert answer["result"]["protocolVersion"] == version
    await client.send([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    refusal = json.loads(await client.next_line())
    assert refusal["id"] is None and refusal["error"]["code"] == INVALID_REQUEST
    assert version in refusal["error"]["message"]


async def test_a_request_cancelled_at_once_is_not_answered(client: RawClient):
    await client.initialize()
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "generate_full_status"}}
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "user"}}
    await client.send(call, cancel, {"jsonrpc": "2.0", "id": 2, "method": "ping"})
    await client.answer(2)
    # Everything written so far, plus anything still in flight before a second ping's answer.
    await client.request(3, "ping")
    assert all(json.loads(line).get("id") != 1 for line in client.lines), client.lines


async def test_the_python_client_reads_an_unknown_tool_as_not_found(tmp_path: Path):
    async with serving(tmp_path / "store.sqlite3") as server, StatusdClient.connect(server.path) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.call("no_such_tool")
    assert "no_such_tool" in str(missing.value)
