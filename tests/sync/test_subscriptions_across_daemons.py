"""A subscriber on one daemon hears of a write made on another (SPEC §4.4), through a real hub."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from sync_support import wait_for

from statusd.client import StatusdClient
from surface_support import raw_client, serving

pytestmark = pytest.mark.postgres


async def test_a_write_on_daemon_a_notifies_a_subscriber_on_daemon_b(tmp_path: Path, pg_schema: tuple[str, str]):
    async with (
        serving(tmp_path / "a.sqlite3", hub=pg_schema, machine="machine-a") as a,
        serving(tmp_path / "b.sqlite3", hub=pg_schema, machine="machine-b") as b,
    ):
        assert a.service.replicator is not None and b.service.replicator is not None
        tasks = [asyncio.create_task(s.service.replicator.run()) for s in (a, b)]  # type: ignore[union-attr]
        try:
            for s in (a, b):
                await wait_for(lambda s=s: s.service.replicator.state.online, what="both daemons online")
            async with StatusdClient.connect(a.path, client_name="writer") as writer, raw_client(b.path) as watcher:
                await watcher.initialize()
                item = await writer.call("create_work_item", {"item_type": "task", "title": "shared"})
                assert item["sync"] == "confirmed"
                uri = f"statusd://work-items/{item['id']}"
                ids = itertools.count(1)

                async def on_b() -> bool:
                    return "result" in await watcher.request(next(ids), "resources/read", {"uri": uri})

                await wait_for(on_b, within=30, what="the item to reach daemon B")
                assert (await watcher.request(next(ids), "resources/subscribe", {"uri": uri}))["result"] == {}
                update = {"id": item["id"], "version": item["version"], "title": "renamed"}
                assert (await writer.call("update_work_item", update))["sync"] == "confirmed"
                changed = await watcher.notification("notifications/resources/updated", within=30)
                assert changed["params"]["uri"] == uri
                read = await watcher.request(next(ids), "resources/read", {"uri": uri})
                assert '"title":"renamed"' in read["result"]["contents"][0]["text"]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
