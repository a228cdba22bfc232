"""Regressions for the bugs the tool fuzz test (test_fuzz_tools.py, SPEC §12 R6) found, one test each."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from typing import Any

import anyio
import mcp_types as types
import pytest
from fuzz_support import RawSession, nested
from mcp.shared.exceptions import MCPError

from daemon_support import short_socket_dir
from statusd.client import StatusdClient
from statusd.daemon import transport
from statusd.daemon.server import SocketServer
from statusd.daemon.service import Outcome, Service
from statusd.daemon.tools import TOOLS, input_schema


def bad_fields(outcome: Outcome) -> list[str]:
    """The fields a validation_error names (fails on any other outcome)."""
    assert outcome.is_error, outcome.payload
    error = outcome.payload["error"]
    assert error["code"] == "validation_error", error
    return [f["field"] for f in error["details"]["fields"]]


def test_tool_schemas_dropped_the_title_argument() -> None:
    """Schema trimming removed every key named "title", including the *argument* called title."""
    for name, tool in TOOLS.items():
        assert set(input_schema(tool)["properties"]) == set(tool.args.model_fields), name
    title = input_schema(TOOLS["create_work_item"])["properties"]["title"]
    assert title == {"type": "string", "minLength": 1, "maxLength": 200}
    assert "title" in input_schema(TOOLS["create_enhancement"])["required"]


async def test_pr_number_past_sqlite_integer_range_was_internal_error(service: Service) -> None:
    """An int beyond 64 bits reached the INTEGER column: OverflowError, reported as ``internal``."""
    big = await service.call("create_work_item", {"item_type": "task", "title": "t", "pr_number": 2**63})
    assert bad_fields(big) == ["pr_number"]
    item = await service.call("create_work_item", {"item_type": "task", "title": "t", "pr_number": 2**63 - 1})
    assert not item.is_error and item.payload["pr_number"] == 2**63 - 1
    update = await service.call("update_work_item", {"id": item.payload["id"], "version": 1, "pr_number": 10**30})
    assert bad_fields(update) == ["pr_number"]


async def test_huge_integer_task_hours_was_internal_error(service: Service) -> None:
    """math.isfinite() on an int past float range raised OverflowError inside validation."""
    args = {"item_type": "task", "title": "t", "metadata": {"estimated_hours": 10**400, "actual_hours": 1000}}
    assert bad_fields(await service.call("create_work_item", args)) == ["metadata.estimated_hours"]
    ok = await service.call("create_work_item", {**args, "metadata": {"estimated_hours": 1000, "actual_hours": 0.5}})
    assert not ok.is_error, ok.payload


async def test_timestamp_past_utc_range_was_internal_error(service: Service) -> None:
    """A valid ISO time whose UTC form is outside year 1-9999 overflowed in the conversion."""
    metadata = {
        "pr_number": 1,
        "pr_title": "t",
        "commit_hash": "a" * 40,
        "test_summary": {},
        "constitutional_compliance": True,
    }
    late = {"metadata": metadata, "timestamp": "9999-12-31T23:59:59-01:00"}
    assert bad_fields(await service.call("record_deployment", late)) == ["timestamp"]
    early = await service.call("list_deployments", {"since": "0001-01-01T00:00:00+01:00"})
    assert bad_fields(early) == ["since"]
    fine = await service.call("list_deployments", {"since": "9999-12-31T23:59:59+01:00"})
    assert not fine.is_error and fine.payload["deployments"] == []


@pytest.mark.parametrize("tool", ["list_work_items", "query_archived_work_items"])
async def test_cursor_with_lone_surrogate_was_internal_error(service: Service, tool: str) -> None:
    """A forged cursor decoded (via a JSON escape) to a lone surrogate, which SQLite cannot bind."""
    cursor = base64.urlsafe_b64encode(b'["\\ud800", "x"]').decode()
    assert bad_fields(await service.call(tool, {"cursor": cursor})) == ["cursor"]


async def test_deep_metadata_past_the_sdk_parser_was_never_answered(daemon: Any) -> None:
    """The SDK's parser gives up at ~200 levels and drops the request unanswered: the caller hung.

    The official client itself sends up to ~250 levels. Such a request is now read with Python's
    parser and refused by the argument model, which bounds metadata nesting.
    """
    async with daemon.client() as c:
        for depth in (40, 220):
            args = {"item_type": "task", "title": "deep", "metadata": {"k": nested(depth, "dict")}}
            result = await c.session.call_tool("create_work_item", args, read_timeout_seconds=10)
            assert result.is_error
            error = json.loads(result.content[0].text)["error"]  # type: ignore[union-attr]
            assert error["code"] == "validation_error" and error["details"]["fields"][0]["field"] == "metadata"
        shallow = {"item_type": "task", "title": "ok", "metadata": {"k": nested(30, "list")}}
        assert (await c.call("create_work_item", shallow))["metadata"]["k"] == nested(30, "list")


async def test_unreadable_request_was_never_answered(daemon: Any) -> None:
    """Requests the SDK cannot parse got no answer at all; now a JSON-RPC error answers them.

    (A lone surrogate in an *argument* is a validation_error naming it: test_hostile_values.py.)
    """
    async with RawSession.connect(daemon.socket_path, 10.0) as raw:
        params = '{"name":"sync_\\ud800status","arguments":{}}'
        surrogate = '{"jsonrpc":"2.0","id":41,"method":"tools/call","params":' + params + "}"
        answer = await raw.send_line(surrogate, 41)
        assert answer is not None and answer["error"]["code"] == -32600, answer
        too_deep = '{"jsonrpc":"2.0","id":42,"method":"tools/call","params":' + "[" * 5000 + "]" * 5000 + "}"
        answer = await raw.send_line(too_deep, 42, null_ok=True)
        assert answer is not None and answer["id"] is None and answer["error"]["code"] == -32700, answer
        assert (await raw.trivial_call())["success"] is True


async def test_concurrent_large_answers_dropped_the_connection(daemon: Any) -> None:
    """Two answers written at once made the socket raise BusyResourceError: answers lost, session closed."""
    async with daemon.client() as c:
        # ~170 KB per answer (text and structured content): about as large as valid input makes one.
        metadata = {f"blob{n}": "x" * 7_000 for n in range(9)}
        item = await c.call(
            "create_work_item", item_type="task", title="big", description="d" * 20_000, metadata=metadata
        )
        results = await asyncio.gather(
            *(c.session.call_tool("query_work_item", {"id": item["id"]}, read_timeout_seconds=10) for _ in range(8))
        )
        assert [r.is_error for r in results] == [False] * 8
        assert (await c.call("sync_status"))["success"] is True
    assert daemon.alive()


async def test_one_failed_connection_stopped_the_daemon(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception escaping one connection's MCP session ended the listener and so the daemon."""
    original = transport.LineWriter.send
    broken: set[int] = set()

    async def failing_send(self: transport.LineWriter, item: Any, /) -> None:
        # Once the marked answer is due, every write on that connection fails, the error answer too.
        message = item.message
        if isinstance(message, types.JSONRPCResponse) and "explode-this-answer" in message.model_dump_json():
            broken.add(id(self))
        if id(self) in broken:
            raise RuntimeError("simulated transport failure")
        await original(self, item)

    original_line = transport.LineWriter.send_line

    async def failing_send_line(self: transport.LineWriter, data: bytes) -> None:
        # The fast path for tools/call writes encoded lines; fail those the same way.
        if b"explode-this-answer" in data and b'"result"' in data:  # the daemon's answer, not the request
            broken.add(id(self))
        if id(self) in broken:
            raise RuntimeError("simulated transport failure")
        await original_line(self, data)

    monkeypatch.setattr(transport.LineWriter, "send", failing_send)
    monkeypatch.setattr(transport.LineWriter, "send_line", failing_send_line)
    sock_dir = short_socket_dir()
    server = SocketServer(service, sock_dir / "statusd.sock")
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)
            with pytest.raises(MCPError):
                async with StatusdClient.connect(server.path) as c:
                    args = {"item_type": "task", "title": "explode-this-answer"}
                    await c.session.call_tool("create_work_item", args, read_timeout_seconds=10)
            async with StatusdClient.connect(server.path) as c:
                assert (await c.call("sync_status"))["success"] is True
            tg.cancel_scope.cancel()
    finally:
        await server.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
