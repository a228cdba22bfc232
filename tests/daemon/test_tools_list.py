"""``tools/list`` (SPEC §4.1, §4.4, P10): every tool listed with annotations, strict schemas, under 5,000 tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mcp_types.version import LATEST_HANDSHAKE_VERSION

# SPEC §4.1 tools this build serves (list_conflicts, resolve_conflict and migrate_legacy_markdown
# arrive with replication and the legacy importer).
SERVED_TOOLS = {
    "create_work_item",
    "update_work_item",
    "query_work_item",
    "list_work_items",
    "add_dependency",
    "remove_dependency",
    "claim_work_item",
    "create_vendor",
    "query_vendor_status",
    "update_vendor_status",
    "record_deployment",
    "query_deployment",
    "list_deployments",
    "create_enhancement",
    "update_enhancement",
    "list_enhancements",
    "get_project_configuration",
    "update_project_configuration",
    "generate_full_status",
    "trigger_archiving",
    "query_archived_work_items",
    "query_history",
    "sync_status",
    "migrate_legacy_markdown",
}
TOKEN_BUDGET = 5_000


async def raw_tools_list_line(socket_path: Any) -> bytes:
    """The exact bytes of the daemon's ``tools/list`` answer, read off the socket."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=16 * 1024 * 1024)
    try:
        messages: list[dict[str, Any]] = [
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": LATEST_HANDSHAKE_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "size-probe", "version": "1"},
                },
            },
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ]
        writer.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
        await writer.drain()
        async with asyncio.timeout(10):
            while True:
                line = await reader.readline()
                assert line, "the daemon closed the connection before answering tools/list"
                if json.loads(line).get("id") == 2:
                    return line
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tools_list_fits_the_token_budget(daemon):
    line = await raw_tools_list_line(daemon.socket_path)
    answer = json.loads(line)
    assert "result" in answer, answer
    result_chars = len(json.dumps(answer["result"], separators=(",", ":"), ensure_ascii=False))
    assert len(line) / 4 <= TOKEN_BUDGET, f"tools/list is {len(line) / 4:.0f} tokens (chars/4)"
    assert result_chars / 4 <= TOKEN_BUDGET
    assert {t["name"] for t in answer["result"]["tools"]} >= SERVED_TOOLS


async def test_every_served_tool_is_listed_with_a_closed_schema(daemon):
    async with daemon.client("claude-code") as c:
        tools = await c.list_tools()

    names = [t.name for t in tools]
    assert len(names) == len(set(names)), "a tool is listed twice"
    missing = SERVED_TOOLS - set(names)
    assert not missing, f"not listed: {sorted(missing)}"
    for tool in tools:
        assert tool.description, f"{tool.name} has no description"
        schema = tool.input_schema
        assert schema.get("type") == "object", tool.name
        assert schema.get("additionalProperties") is False, f"{tool.name} accepts unknown arguments"
        assert "actor" in schema.get("properties", {}), f"{tool.name} does not take actor"


async def test_required_arguments_match_the_contract(daemon):
    async with daemon.client("claude-code") as c:
        schemas = {t.name: t.input_schema for t in await c.list_tools()}

    def required(name: str) -> set[str]:
        return set(schemas[name].get("required", []))

    assert required("create_work_item") == {"item_type", "title"}
    assert required("update_work_item") == {"id", "version"}
    assert required("update_vendor_status") == {"name", "version"}
    assert required("record_deployment") == {"metadata"}
    assert required("query_work_item") == {"id"}
    assert required("claim_work_item") == set()  # id omitted = the highest-priority ready item
    assert required("generate_full_status") == set()


READ_ONLY = {
    "query_work_item",
    "list_work_items",
    "query_vendor_status",
    "query_deployment",
    "list_deployments",
    "list_enhancements",
    "get_project_configuration",
    "generate_full_status",
    "query_archived_work_items",
    "query_history",
    "sync_status",
    "list_conflicts",
}


async def test_every_tool_is_annotated_from_its_declaration(daemon):
    line = await raw_tools_list_line(daemon.socket_path)
    tools = {t["name"]: t for t in json.loads(line)["result"]["tools"]}

    for name, tool in tools.items():
        hints = tool.get("annotations")
        assert hints is not None, f"{name} has no annotations"
        assert set(hints) == {"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}, name
        assert isinstance(hints["title"], str) and hints["title"], name
        assert hints["openWorldHint"] is False, name
        assert hints["readOnlyHint"] is (name in READ_ONLY), f"{name}: readOnlyHint {hints['readOnlyHint']}"
        if hints["readOnlyHint"]:
            assert hints["destructiveHint"] is False and hints["idempotentHint"] is True, name
    assert set(tools) >= READ_ONLY, sorted(READ_ONLY - set(tools))
    # Writes that overwrite or remove are destructive; creating is not, nor is repeatable.
    assert tools["update_work_item"]["annotations"]["destructiveHint"] is True
    assert tools["remove_dependency"]["annotations"]["destructiveHint"] is True
    assert tools["create_work_item"]["annotations"]["destructiveHint"] is False
    assert tools["create_work_item"]["annotations"]["idempotentHint"] is False
    assert tools["add_dependency"]["annotations"]["idempotentHint"] is True
    assert tools["claim_work_item"]["annotations"]["idempotentHint"] is False
