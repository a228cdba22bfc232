"""The result envelope of SPEC §4.2, through our client and as a raw MCP ``CallToolResult``."""

from __future__ import annotations

import json

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_support import bridge_session

from statusd.client import NotFoundError, ValidationError, VersionMismatchError


async def test_reads_and_writes_carry_the_envelope(daemon):
    async with daemon.client("claude-code") as c:
        created = await c.call("create_work_item", item_type="task", title="enveloped")
        read = await c.call("query_work_item", id=created["id"])
        vendor = await c.call("create_vendor", name="vendor_a")
        report = await c.call("generate_full_status")

    for write in (created, vendor):
        assert write["success"] is True
        assert write["data_source"] == "local_store"
        assert write["warnings"] == []
        assert write["sync"] == "local_only"
        assert write["wrote_to_store"] is True
        assert write["wrote_to_markdown"] is True  # the mirror is on by default (mirror.enabled)
    for result in (read, report):
        assert result["success"] is True
        assert result["data_source"] == "local_store"
        assert result["warnings"] == []
        assert "wrote_to_store" not in result and "wrote_to_markdown" not in result
    assert "sync" not in read
    assert report["sync"]["mode"] == "standalone"  # the report's own section (§5.6), not a write verdict


async def test_errors_arrive_typed_through_the_client(daemon):
    async with daemon.client("claude-code") as c:
        item = await c.call("create_work_item", item_type="task", title="t")
        await c.call("update_work_item", id=item["id"], version=1, title="t2")

        with pytest.raises(VersionMismatchError) as mismatch:
            await c.call("update_work_item", id=item["id"], version=1, title="stale")
        assert mismatch.value.details["last_updated_by"] == "claude-code"

        with pytest.raises(NotFoundError) as missing:
            await c.call("query_work_item", id="ffffff00")
        assert missing.value.details["entity"] == "work_item"

        with pytest.raises(ValidationError) as invalid:
            await c.call("create_work_item", item_type="epic", title="  ")
        assert {f["field"] for f in invalid.value.fields} == {"item_type", "title"}

        with pytest.raises(ValidationError) as unknown:
            await c.call("query_work_item", id=item["id"], colour="blue")
        assert unknown.value.fields[0]["field"] == "colour"

        # The daemon is still fine after all of that.
        assert (await c.call("query_work_item", id=item["id"]))["version"] == 2


async def test_raw_call_tool_results(daemon):
    """Checked with the SDK's own ClientSession and stdio transport (through the bridge), not our client."""
    async with bridge_session(daemon.socket_path) as session:
        ok = await session.call_tool("create_work_item", {"item_type": "task", "title": "raw"})
        assert ok.is_error is False
        assert isinstance(ok.structured_content, dict)
        assert [block.type for block in ok.content] == ["text"]
        assert isinstance(ok.content[0], types.TextContent)
        assert json.loads(ok.content[0].text) == ok.structured_content
        item = ok.structured_content
        assert item["success"] is True and item["data_source"] == "local_store" and item["warnings"] == []
        assert (item["sync"], item["wrote_to_store"], item["wrote_to_markdown"]) == ("local_only", True, True)

        await session.call_tool("update_work_item", {"id": item["id"], "version": 1, "title": "raw 2"})
        stale = await session.call_tool("update_work_item", {"id": item["id"], "version": 1, "title": "raw 3"})
        assert stale.is_error is True
        assert isinstance(stale.content[0], types.TextContent)
        body = json.loads(stale.content[0].text)
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["code"] == "version_mismatch"
        assert "version mismatch" in body["error"]["message"]
        details = body["error"]["details"]
        assert (details["expected_version"], details["actual_version"]) == (1, 2)
        assert details["last_updated_by"] == "declared-client"

        invalid = await session.call_tool("create_work_item", {"item_type": "task", "title": "", "priority": "asap"})
        assert invalid.is_error is True
        assert isinstance(invalid.content[0], types.TextContent)
        error = json.loads(invalid.content[0].text)["error"]
        assert error["code"] == "validation_error"
        assert {f["field"] for f in error["details"]["fields"]} == {"title", "priority"}

        # SPEC §4.4: an unknown tool is a protocol error (-32602), not a tool result.
        with pytest.raises(MCPError) as unknown:
            await session.call_tool("no_such_tool", {})
        assert unknown.value.error.code == types.INVALID_PARAMS
        assert "no_such_tool" in unknown.value.error.message
