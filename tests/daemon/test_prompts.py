"""Prompts and completions (SPEC §4.4) through the official SDK client on the real socket server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from statusd.client import StatusdClient
from statusd.daemon.server import SocketServer
from surface_support import serving


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SocketServer]:
    async with serving(tmp_path / "store.sqlite3") as s:
        yield s


def text_of(result: types.GetPromptResult) -> str:
    content = result.messages[0].content
    assert isinstance(content, types.TextContent)
    return content.text


async def test_prompts_are_listed_with_their_arguments(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as client:
        listed = await client.session.list_prompts()
        arguments = {p.name: {a.name for a in p.arguments or []} for p in listed.prompts}
        assert arguments == {"next_work": {"item_type", "vendor"}, "handoff": {"work_item_id", "notes"}}


async def test_next_work_shows_ready_items_and_how_to_claim(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as client:
        ready = await client.call("create_work_item", {"item_type": "task", "title": "Ready one", "priority": "high"})
        blocked = await client.call("create_work_item", {"item_type": "task", "title": "Waits"})
        await client.call(
            "add_dependency",
            {"work_item_id": blocked["id"], "depends_on_id": ready["id"], "dependency_type": "depends_on"},
        )
        await client.call("create_work_item", {"item_type": "research", "title": "A study"})

        text = text_of(await client.session.get_prompt("next_work", {"item_type": "task"}))
        assert "claim_work_item" in text
        assert ready["id"] in text and "Ready one" in text
        assert blocked["id"] not in text, "an item waiting on another is not ready"
        assert "A study" not in text, "filtered by item_type"


async def test_handoff_carries_the_item_its_history_and_the_notes(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as client:
        item = await client.call("create_work_item", {"item_type": "task", "title": "Handed over"})
        await client.call("update_work_item", {"id": item["id"], "version": 1, "status": "blocked"})
        result = await client.session.get_prompt("handoff", {"work_item_id": item["id"][:8], "notes": "ask Sam"})
        text = text_of(result)
        assert item["id"] in text and "Handed over" in text
        assert '"version": 2' in text, "the item's history is included"
        assert "ask Sam" in text


async def test_prompt_errors_are_invalid_params(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as client:
        with pytest.raises(MCPError) as unknown:
            await client.session.get_prompt("no_such_prompt")
        with pytest.raises(MCPError) as bad_argument:
            await client.session.get_prompt("next_work", {"colour": "red"})
        with pytest.raises(MCPError) as bad_value:
            await client.session.get_prompt("next_work", {"item_type": "epic"})
        assert {unknown.value.error.code, bad_argument.value.error.code, bad_value.value.error.code} == {-32602}


async def test_completion_of_work_item_ids_from_a_prefix(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as client:
        made = [await client.call("create_work_item", {"item_type": "task", "title": f"t{i}"}) for i in range(12)]
        target = made[0]["id"]
        ref = types.ResourceTemplateReference(type="ref/resource", uri="statusd://work-items/{id}")
        one = await client.session.complete(ref, {"name": "id", "value": target[:8]})
        assert one.completion.values == [target]
        everything = await client.session.complete(ref, {"name": "id", "value": ""})
        assert sorted(everything.completion.values) == sorted(m["id"] for m in made)
        assert everything.completion.total == 12 and everything.completion.has_more is False
        prompt = types.PromptReference(type="ref/prompt", name="handoff")
        via_prompt = await client.session.complete(prompt, {"name": "work_item_id", "value": target[:8]})
        assert via_prompt.completion.values == [target]


async def test_completion_of_vendor_names_and_item_types(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as client:
        for name in ("Acme Extractor", "acme-pdf", "Beta"):
            await client.call("create_vendor", {"name": name})
        ref = types.ResourceTemplateReference(type="ref/resource", uri="statusd://vendors/{name}")
        names = await client.session.complete(ref, {"name": "name", "value": "ACME"})
        assert names.completion.values == ["Acme Extractor", "acme-pdf"]
        prompt = types.PromptReference(type="ref/prompt", name="next_work")
        vendors = await client.session.complete(prompt, {"name": "vendor", "value": "b"})
        assert vendors.completion.values == ["Beta"]
        types_ = await client.session.complete(prompt, {"name": "item_type", "value": "r"})
        assert types_.completion.values == ["research"]
        notes = await client.session.complete(
            types.PromptReference(type="ref/prompt", name="handoff"), {"name": "notes", "value": "x"}
        )
        assert notes.completion.values == []
