"""Client identity (SPEC §4.3): declared MCP name, the bridge's --client, and the actor argument."""

from __future__ import annotations

import json
import tempfile

import mcp_types as types
from mcp_support import bridge_session


def payload(result: types.CallToolResult) -> dict:
    assert result.is_error is False, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_declared_client_name_is_recorded(daemon):
    async with daemon.client("claude-desktop") as c:
        item = await c.call("create_work_item", item_type="task", title="mine")
        assert (item["created_by"], item["updated_by"]) == ("claude-desktop", "claude-desktop")
        vendor = await c.call("create_vendor", name="vendor_a")
        assert vendor["created_by"] == "claude-desktop"
        history = await c.call("query_history", id=item["id"])
        assert history["versions"][0]["by"] == "claude-desktop"


async def test_actor_argument_overrides_the_declared_name(daemon):
    async with daemon.client("claude-desktop") as c:
        item = await c.call("create_work_item", item_type="task", title="on behalf", actor="reviewer-bot")
        assert item["created_by"] == "reviewer-bot"
        updated = await c.call("update_work_item", id=item["id"], version=1, status="blocked", actor="human:ana")
        assert (updated["created_by"], updated["updated_by"]) == ("reviewer-bot", "human:ana")
        # Without actor the connection's name applies again.
        again = await c.call("update_work_item", id=item["id"], version=2, status="active")
        assert again["updated_by"] == "claude-desktop"


async def test_each_connection_keeps_its_own_name(daemon):
    async with daemon.client("claude-code") as a, daemon.client("github-copilot") as b:
        from_a = await a.call("create_work_item", item_type="task", title="a")
        from_b = await b.call("create_work_item", item_type="task", title="b")
        assert (from_a["created_by"], from_b["created_by"]) == ("claude-code", "github-copilot")


async def test_bridge_client_name_beats_the_declared_name(daemon):
    async with bridge_session(daemon.socket_path, client="bridge-x", declared_name="some-ide") as session:
        item = payload(await session.call_tool("create_work_item", {"item_type": "task", "title": "via bridge"}))
        assert (item["created_by"], item["updated_by"]) == ("bridge-x", "bridge-x")
        update = {"id": item["id"], "version": 1, "title": "renamed", "actor": "explicit"}
        done = payload(await session.call_tool("update_work_item", update))
        assert done["updated_by"] == "explicit"  # the actor argument still wins over the bridge's name

    # Without --client the bridge passes the declared name through.
    async with bridge_session(daemon.socket_path, declared_name="some-ide") as session:
        other = payload(await session.call_tool("create_work_item", {"item_type": "task", "title": "declared"}))
        assert other["created_by"] == "some-ide"

    async with daemon.client("checker") as c:
        stored = await c.call("query_work_item", id=item["id"])
        assert (stored["created_by"], stored["updated_by"], stored["title"]) == ("bridge-x", "explicit", "renamed")


async def test_bridge_is_quiet_on_stderr(daemon):
    with tempfile.TemporaryFile("w+") as errlog:
        async with bridge_session(daemon.socket_path, client="bridge-x", errlog=errlog) as session:
            tools = await session.list_tools()
            assert {t.name for t in tools.tools} >= {"create_work_item", "sync_status"}
            status = await session.call_tool("sync_status", {})
            assert status.is_error is False
            assert isinstance(status.content[0], types.TextContent)
            assert json.loads(status.content[0].text)["mode"] == "standalone"
        errlog.seek(0)
        assert errlog.read() == ""
