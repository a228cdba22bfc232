"""The SDK's own test habit: ``Client(server)`` in memory against the daemon's real MCP server object.

No socket and no fast path: this is the SDK path alone (the socket tests cover the fast path).
"""

from __future__ import annotations

import json

import mcp_types as types

from inprocess_support import memory_client
from statusd.daemon.service import Service
from statusd.daemon.tools import TOOLS


async def test_the_sdk_path_lists_every_tool_and_answers_with_the_envelope(service: Service) -> None:
    async with memory_client(service, "memory-agent") as client:
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == set(TOOLS)

        created = await client.call_tool("create_work_item", {"item_type": "task", "title": "in memory"})
        assert created.is_error is False
        item = created.structured_content
        assert isinstance(item, dict)
        assert isinstance(created.content[0], types.TextContent)
        assert json.loads(created.content[0].text) == item
        assert (item["success"], item["sync"], item["created_by"]) == (True, "local_only", "memory-agent")

        stale = await client.call_tool("update_work_item", {"id": item["id"], "version": 7, "title": "x"})
        assert stale.is_error is True
        assert isinstance(stale.content[0], types.TextContent)
        error = json.loads(stale.content[0].text)["error"]
        assert error["code"] == "version_mismatch"
        assert (error["details"]["expected_version"], error["details"]["actual_version"]) == (7, 1)
