"""Resources and subscriptions (SPEC §4.4), through the official SDK client on the real socket server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from statusd.client import StatusdClient
from statusd.daemon.server import SocketServer
from statusd.models import CreateWorkItemArgs
from statusd.store import WriteContext, apply, workitems
from surface_support import raw_client, serving


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SocketServer]:
    async with serving(tmp_path / "store.sqlite3") as s:
        yield s


async def test_resources_and_templates_are_listed(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as c:
        listed = await c.session.list_resources()
        templates = await c.session.list_resource_templates()
    assert {(r.uri, r.mime_type) for r in listed.resources} == {
        ("statusd://status", "text/markdown"),
        ("statusd://status.json", "application/json"),
    }
    assert {t.uri_template for t in templates.resource_templates} == {
        "statusd://work-items/{id}",
        "statusd://vendors/{name}",
    }


async def test_status_reads_as_a_document_and_as_json(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as c:
        await c.call("create_vendor", {"name": "Acme"})
        document = await c.session.read_resource("statusd://status")
        report = await c.session.read_resource("statusd://status.json")
    text = document.contents[0]
    assert isinstance(text, types.TextResourceContents) and text.mime_type == "text/markdown"
    assert "# Project Status" in text.text and "- Acme: broken" in text.text  # the mirror's §9 document
    data = json.loads(report.contents[0].text)  # type: ignore[union-attr]
    assert data["vendor_health"]["total_vendors"] == 1 and data["success"] is True


async def test_templates_read_one_item_and_one_vendor(server: SocketServer):
    async with StatusdClient.connect(server.path, client_name="host") as c:
        parent = await c.call("create_work_item", {"item_type": "project", "title": "P"})
        child = await c.call("create_work_item", {"item_type": "task", "title": "C", "parent_id": parent["id"]})
        await c.call("create_vendor", {"name": "Big Vendor"})
        item = await c.session.read_resource(f"statusd://work-items/{parent['id'][:8]}")
        vendor = await c.session.read_resource("statusd://vendors/big%20vendor")
        with pytest.raises(MCPError) as missing:
            await c.session.read_resource("statusd://work-items/00000000-0000-4000-8000-000000000000")
        with pytest.raises(MCPError) as unknown:
            await c.session.read_resource("statusd://nothing")
    item_data = json.loads(item.contents[0].text)  # type: ignore[union-attr]
    assert item_data["id"] == parent["id"]
    assert [c["id"] for c in item_data["children"]] == [child["id"]]
    assert json.loads(vendor.contents[0].text)["name"] == "Big Vendor"  # type: ignore[union-attr]
    assert missing.value.error.code == -32002
    assert unknown.value.error.code == -32002


async def test_a_subscriber_hears_of_another_clients_write(server: SocketServer):
    async with raw_client(server.path) as watcher, StatusdClient.connect(server.path, client_name="writer") as writer:
        await watcher.initialize()
        assert (await watcher.request(1, "resources/subscribe", {"uri": "statusd://status"}))["result"] == {}
        await writer.call("create_vendor", {"name": "Acme"})
        notice = await watcher.notification("notifications/resources/updated")
    assert notice["params"] == {"uri": "statusd://status"}


async def test_an_item_subscription_fires_for_that_item_only_and_stops_on_unsubscribe(server: SocketServer):
    async with raw_client(server.path) as watcher, StatusdClient.connect(server.path, client_name="writer") as writer:
        await watcher.initialize()
        watched = await writer.call("create_work_item", {"item_type": "task", "title": "watched"})
        uri = f"statusd://work-items/{watched['id']}"
        await watcher.request(1, "resources/subscribe", {"uri": uri})
        await writer.call("create_work_item", {"item_type": "task", "title": "unrelated"})
        await writer.call("update_work_item", {"id": watched["id"], "version": 1, "status": "blocked"})
        notice = await watcher.notification("notifications/resources/updated")
        assert notice["params"]["uri"] == uri
        notices = [line for line in watcher.lines if b"resources/updated" in line]
        assert len(notices) == 1, "the unrelated item's creation did not notify"

        await watcher.request(2, "resources/unsubscribe", {"uri": uri})
        await writer.call("update_work_item", {"id": watched["id"], "version": 2, "status": "active"})
        # A later subscription proves the connection heard the write; the unsubscribed one stayed silent.
        await watcher.request(3, "resources/subscribe", {"uri": "statusd://status.json"})
        await writer.call("create_vendor", {"name": "Acme"})
        assert (await watcher.notification("notifications/resources/updated"))["params"]["uri"] == (
            "statusd://status.json"
        )
        assert all(uri.encode() not in line for line in watcher.lines[watcher.lines.index(notices[0]) + 1 :])


async def test_a_burst_of_writes_is_one_notification(server: SocketServer):
    async with raw_client(server.path) as watcher:
        await watcher.initialize()
        await watcher.request(1, "resources/subscribe", {"uri": "statusd://status"})
        store = server.service.store
        for i in range(20):  # within the debounce window: one transaction each, back to back
            await store.write(
                workitems.create, WriteContext(actor="burst"), CreateWorkItemArgs(item_type="task", title=f"t{i}")
            )
        await watcher.notification("notifications/resources/updated")
        await watcher.request(2, "ping")
    assert sum(b"resources/updated" in line for line in watcher.lines) < 20


async def test_a_pulled_change_notifies_the_subscriber(server: SocketServer):
    """Changes from another machine arrive through apply_pulled, the replicator's own write path."""
    store = server.service.store
    ident = "3f0e8b1c-2d4a-4b6e-9c8d-0a1b2c3d4e5f"
    async with raw_client(server.path) as watcher:
        await watcher.initialize()
        await watcher.request(1, "resources/subscribe", {"uri": f"statusd://work-items/{ident}"})
        change = {
            "entity": "work_item",
            "entity_id": ident,
            "version": 1,
            "data": {"item_type": "task", "title": "from elsewhere", "status": "active", "priority": "medium"},
            "changes": {"title": {"old": None, "new": "from elsewhere"}},
            "op_id": "00000000-0000-4000-8000-0000000000aa",
            "actor": "remote",
            "at": "2026-11-30T12:00:00.000000Z",
            "machine": "other-machine",
            "via": "tool",
        }
        await store.write(apply.apply_pulled, WriteContext(actor="statusd", via="sync"), [change], "1:1")
        with anyio.fail_after(10):
            notice = await watcher.notification("notifications/resources/updated")
    assert notice["params"]["uri"] == f"statusd://work-items/{ident}"


async def test_subscribing_to_an_unknown_uri_is_an_error(server: SocketServer):
    async with raw_client(server.path) as client:
        await client.initialize()
        answer = await client.request(1, "resources/subscribe", {"uri": "https://example.com/"})
    assert answer["error"]["code"] == -32002


MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "modern-host", "version": "1"},
}


async def test_a_2026_listen_stream_hears_of_another_clients_write(server: SocketServer):
    """The 2026-07-28 era has no resources/subscribe: a subscriptions/listen request is the stream."""
    async with raw_client(server.path) as listener, StatusdClient.connect(server.path, client_name="writer") as writer:
        discovered = await listener.request(1, "server/discover", {"_meta": MODERN})
        assert discovered["result"]["capabilities"]["resources"]["subscribe"] is True
        watched = await writer.call("create_work_item", {"item_type": "task", "title": "watched"})
        uri = f"statusd://work-items/{watched['id']}"
        listen = {"notifications": {"resourceSubscriptions": [uri, "statusd://status"]}, "_meta": MODERN}
        await listener.send({"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen", "params": listen})
        ack = await listener.notification("notifications/subscriptions/acknowledged")
        assert set(ack["params"]["notifications"]["resourceSubscriptions"]) == {uri, "statusd://status"}
        await writer.call("update_work_item", {"id": watched["id"], "version": 1, "status": "blocked"})
        # The create's own status notice may still be on its way (debounced): read until both are heard.
        heard: set[str] = set()
        with anyio.fail_after(10):
            while heard != {uri, "statusd://status"}:
                heard.add((await listener.notification("notifications/resources/updated"))["params"]["uri"])
    assert heard == {uri, "statusd://status"}
