"""Postgres outages (SPEC §6, §12 R2) on a private cluster this file may stop and start at will."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sync_support import (
    Fleet,
    Workload,
    assert_no_lost_intent,
    found,
    hub_entities,
    pg_config,
    sync_status,
    wait_converged,
    wait_for,
    wait_online,
)

from daemon_support import DaemonProcess
from pg_support import ThrowawayCluster, drop_schema, fresh_schema


@pytest.fixture
def hub(pg_cluster: ThrowawayCluster) -> Iterator[tuple[ThrowawayCluster, str]]:
    """The private cluster (running) and a schema of this test's own on it."""
    pg_cluster.ensure_running()
    schema = fresh_schema(pg_cluster.dsn)
    try:
        yield pg_cluster, schema
    finally:
        pg_cluster.ensure_running()
        drop_schema(pg_cluster.dsn, schema)


async def wait_reachable(d: DaemonProcess, reachable: bool) -> None:
    async def probe() -> bool:
        return bool((await sync_status(d))["postgres"]["reachable"]) is reachable

    await wait_for(probe, what=f"{d.root.name} to see Postgres {'up' if reachable else 'down'}")


def has_warning(result: dict[str, Any], code: str) -> bool:
    return any(w.startswith(code) for w in result["warnings"])


async def test_r2_postgres_stopped_during_writes_on_two_daemons(
    hub: tuple[ThrowawayCluster, str], fleet: Fleet
) -> None:
    cluster, schema = hub
    config = pg_config(cluster.dsn, schema, confirm_timeout_ms=1000)
    a, b = fleet.start(config), fleet.start(config)
    await wait_online(a)
    await wait_online(b)
    work = Workload(tag="r2")
    async with a.client("a1") as a1, a.client("a2") as a2, b.client("b1") as b1, b.client("b2") as b2:
        shared = await a1.call("create_work_item", item_type="task", title="shared")
        work.created[shared["id"]] = "shared"
        await wait_for(lambda: found(b1, shared["id"]), what="the shared item on B")
        writers = [
            asyncio.create_task(work.writer(name, machine, c, shared["id"]))
            for name, machine, c in (("a1", 0, a1), ("a2", 0, a2), ("b1", 1, b1), ("b2", 1, b2))
        ]
        try:
            await wait_for(lambda: work.acked("online") >= 24, what="writes while online")
            work.phase = "stopping"
            await cluster.astop("immediate")
            await wait_reachable(a, False)
            await wait_reachable(b, False)
            work.phase = "down"
            await wait_for(lambda: work.acked("down") >= 24, what="writes during the outage")

            # Reads answer from the local store, with warnings.
            for c in (a1, b1):
                read = await c.call("query_work_item", id=shared["id"])
                assert read["data_source"] == "local_store" and has_warning(read, "database_unavailable")
                listing = await c.call("list_work_items", limit=500)
                assert listing["total_count"] >= 1 and has_warning(listing, "database_unavailable")

            work.phase = "restarting"
            await cluster.astart()
            await wait_reachable(a, True)
            await wait_reachable(b, True)
            work.phase = "back"
            await wait_for(lambda: work.acked("back") >= 12, what="writes after the restart")
        finally:
            work.stop.set()
            await asyncio.gather(*writers)

    # Writes made while the daemons knew Postgres was down were queued and said so.
    down = [o.result for o in work.outcomes if o.phase == "down"]
    assert down
    for r in down:
        assert r["sync"] == "queued", r
        assert has_warning(r, "database_unavailable") and has_warning(r, "queued_for_sync"), r
    for o in work.outcomes:
        if o.phase == "online":
            assert o.result["sync"] == "confirmed", o

    await wait_converged([a.store_path, b.store_path], cluster.dsn, schema)
    hub_rows = await hub_entities(cluster.dsn, schema)
    # Every acknowledged create is there exactly once (ids are unique; titles are too, except edits
    # of the shared item, which is why titles are compared through the ids).
    assert work.created.keys() <= hub_rows.keys()
    created_titles = sorted(v for v in work.created.values() if v.startswith("r2-"))
    hub_create_titles = sorted(
        h["fields"]["title"] for i, h in hub_rows.items() if i != shared["id"] and h["entity"] == "work_item"
    )
    assert hub_create_titles == created_titles
    await assert_no_lost_intent(work.intents, [a.store_path, b.store_path], cluster.dsn, schema)


async def test_seed_scenario_4_database_unavailable(hub: tuple[ThrowawayCluster, str], fleet: Fleet) -> None:
    """Seed scenario 4 as SPEC §6 redefines it.

    The seed's cascade (SQLite cache with a 30-minute TTL → git history → markdown) is replaced by
    the local-first design: the store is the primary copy, so with Postgres down reads answer from
    it (``data_source: local_store``) with warnings instead of errors, and writes are queued and
    replayed later. The git/markdown layers only matter when the local store itself is lost
    (SPEC §6, R8), which is not this scenario.
    """
    cluster, schema = hub
    d = fleet.start(pg_config(cluster.dsn, schema))
    await wait_online(d)
    async with d.client("claude-code") as mcp_client:
        for name in ("vendor_a", "vendor_b"):
            vendor = await mcp_client.call("create_vendor", name=name)
            await mcp_client.call("update_vendor_status", name=name, version=vendor["version"], status="operational")
        item = await mcp_client.call("create_work_item", item_type="task", title="Before the outage")

        await cluster.astop("fast")  # Simulate PostgreSQL failure
        await wait_reachable(d, False)

        response = await mcp_client.call("query_vendor_status", name="vendor_a")
        assert response["success"] is True
        assert response["name"] == "vendor_a"
        assert response["operational"] is True
        assert has_warning(response, "database_unavailable")
        assert response["data_source"] == "local_store"

        response = await mcp_client.call("update_work_item", id=item["id"], version=1, title="Updated During Outage")
        assert response["success"] is True
        assert response["wrote_to_store"] is True
        assert has_warning(response, "database_unavailable")
        assert has_warning(response, "queued_for_sync")
        assert response["sync"] == "queued"
        assert (await mcp_client.call("query_work_item", id=item["id"]))["title"] == "Updated During Outage"
        assert (await mcp_client.call("sync_status"))["pending_outbox"] == 1

        await cluster.astart()
        await wait_reachable(d, True)
        await wait_converged([d.store_path], cluster.dsn, schema)
        assert (await hub_entities(cluster.dsn, schema))[item["id"]]["fields"]["title"] == "Updated During Outage"
        after = await mcp_client.call("query_vendor_status", name="vendor_a")
        assert after["warnings"] == []


async def test_daemon_starts_and_serves_with_postgres_down(hub: tuple[ThrowawayCluster, str], fleet: Fleet) -> None:
    cluster, schema = hub
    await cluster.astop("fast")
    spawned = time.monotonic()
    d = fleet.start(pg_config(cluster.dsn, schema))
    async with d.client() as c:
        listing = await c.call("list_work_items")
        answered = time.monotonic() - spawned
        assert listing["success"] is True and listing["items"] == []
        assert has_warning(listing, "database_unavailable")
        item = await c.call("create_work_item", item_type="task", title="made before Postgres ever answered")
        assert item["sync"] == "queued" and has_warning(item, "queued_for_sync")
    assert answered < 10, f"first answer took {answered:.1f}s"
    status = await sync_status(d)
    assert status["postgres"]["reachable"] is False and status["postgres"]["down_since"]

    await cluster.astart()
    await wait_online(d)
    await wait_converged([d.store_path], cluster.dsn, schema)
