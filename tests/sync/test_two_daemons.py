"""Several daemons, one hub (SPEC §5): convergence, cross-machine locking (R4), offline conflicts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sync_support import (
    Fleet,
    hub_connect,
    hub_entities,
    pg_config,
    store_rows,
    store_scalar,
    sync_status,
    wait_converged,
    wait_for,
    wait_online,
)
from tcp_proxy import TcpProxy

from daemon_support import DaemonProcess
from statusd.client import NotFoundError, StatusdClient, ValidationError, VersionMismatchError

DEPLOYMENT = {
    "pr_number": 7,
    "pr_title": "Ship it",
    "commit_hash": "b" * 40,
    "test_summary": {"passed": 3, "failed": 0, "skipped": 0},
    "constitutional_compliance": True,
}


@pytest.fixture
def proxies() -> Iterator[list[TcpProxy]]:
    """Proxies opened by a test (``proxies.append(TcpProxy.to(dsn))``), closed afterwards."""
    opened: list[TcpProxy] = []
    try:
        yield opened
    finally:
        for p in opened:
            p.close()


async def start_online(fleet: Fleet, config: str, n: int) -> list[DaemonProcess]:
    daemons = [fleet.start(config) for _ in range(n)]
    for d in daemons:
        await wait_online(d)
    return daemons


async def seen(d: DaemonProcess, tool: str, **args: Any) -> dict[str, Any] | None:
    """The tool's answer on ``d``, or None while the entity has not arrived there."""
    async with d.client("observer") as c:
        try:
            return await c.call(tool, **args)
        except NotFoundError:  # until the change arrives
            return None


async def wait_seen(d: DaemonProcess, tool: str, check: Any = None, **args: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        got = await seen(d, tool, **args)
        return got if got is not None and (check is None or check(got)) else None

    return await wait_for(probe, what=f"{tool}({args}) on {d.root.name}")


def assert_confirmed(result: dict[str, Any]) -> None:
    assert result["success"] is True
    assert result["sync"] == "confirmed", result
    assert result["warnings"] == [], result


async def test_writes_on_each_daemon_are_visible_on_the_other(fleet: Fleet, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    a, b = await start_online(fleet, pg_config(dsn, schema), 2)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        project = await ca.call("create_work_item", item_type="project", title="Replicated project")
        task = await ca.call("create_work_item", item_type="task", title="child", parent_id=project["id"])
        vendor = await ca.call("create_vendor", name="Northwind", metadata={"extractor_version": "1.0.0"})
        enhancement = await ca.call("create_enhancement", title="Faster sync", priority="high")
        edge = await ca.call("add_dependency", work_item_id=task["id"], depends_on_id=project["id"],
                             dependency_type="depends_on")  # fmt: skip
        deployment = await ca.call(
            "record_deployment", metadata=DEPLOYMENT, vendor_ids=[vendor["id"]], work_item_ids=[task["id"]]
        )
        for result in (project, task, vendor, enhancement, edge, deployment):
            assert_confirmed(result)

        # A wrote these one after another and pulls keep that order: once the last is there, all are.
        await wait_seen(b, "query_deployment", id=deployment["id"])
        got = await cb.call("query_work_item", id=task["id"])
        assert got["parent_chain"][0]["id"] == project["id"] and got["depth"] == 1
        assert got["created_by"] == "agent-a"
        assert got["dependencies"][0]["related_item"]["id"] == project["id"]
        assert (await cb.call("query_vendor_status", name="northwind"))["id"] == vendor["id"]
        enh = await cb.call("list_enhancements")
        assert [e["id"] for e in enh["enhancements"]] == [enhancement["id"]]

        updated = await cb.call("update_work_item", id=task["id"], version=task["version"], status="blocked")
        assert_confirmed(updated)
        vendor_b = await cb.call("update_vendor_status", name="Northwind", version=1, status="operational")
        assert_confirmed(vendor_b)
        await wait_seen(a, "query_work_item", lambda r: r["status"] == "blocked" and r["version"] == 2, id=task["id"])
        v = await wait_seen(a, "query_vendor_status", lambda r: r["operational"] is True, name="Northwind")
        assert v["version"] == 2
        history = await ca.call("query_history", id=task["id"])
        assert sorted((h["version"], h["by"]) for h in history["versions"]) == [(1, "agent-a"), (2, "agent-b")]
    await wait_converged([a.store_path, b.store_path], dsn, schema)


async def test_three_daemons_converge_under_concurrent_writes(fleet: Fleet, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    daemons = await start_online(fleet, pg_config(dsn, schema), 3)
    async with daemons[0].client() as c0:
        shared = await c0.call("create_work_item", item_type="task", title="shared", description="d0")
    for d in daemons[1:]:
        await wait_seen(d, "query_work_item", id=shared["id"])
    fields = [{"priority": "critical"}, {"status": "blocked"}, {"description": "set by machine 3"}]

    async def machine(n: int, d: DaemonProcess) -> list[str]:
        ids = []
        async with d.client(f"agent-{n}") as c:
            for i in range(8):
                item = await c.call("create_work_item", item_type="task", title=f"m{n}-{i}")
                assert_confirmed(item)
                item = await c.call("update_work_item", id=item["id"], version=item["version"], priority="low")
                assert item["version"] == 2
                ids.append(item["id"])
            # Everyone edits the shared item at once, each a different field: losers re-read and retry.
            for _attempt in range(50):
                current = await c.call("query_work_item", id=shared["id"])
                try:
                    await c.call("update_work_item", id=shared["id"], version=current["version"], **fields[n])
                    break
                except VersionMismatchError:
                    continue
            else:
                raise AssertionError(f"machine {n} never got its shared update in")
        return ids

    created = await asyncio.gather(*(machine(n, d) for n, d in enumerate(daemons)))
    await wait_converged([d.store_path for d in daemons], dsn, schema)
    hub = await hub_entities(dsn, schema)
    assert {i for ids in created for i in ids} <= hub.keys()
    assert len([e for e in hub.values() if e["entity"] == "work_item"]) == 25
    final = hub[shared["id"]]
    assert final["version"] == 4
    assert final["fields"]["priority"] == "critical"
    assert final["fields"]["status"] == "blocked"
    assert final["fields"]["description"] == "set by machine 3"


async def clients(stack: AsyncExitStack, daemons: list[DaemonProcess], n: int) -> list[StatusdClient]:
    """``n`` MCP sessions spread round-robin over the daemons."""
    return [await stack.enter_async_context(daemons[i % len(daemons)].client(f"agent-{i}")) for i in range(n)]


async def test_r4_twenty_same_version_updates_across_two_daemons_one_wins(
    fleet: Fleet, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    a, b = await start_online(fleet, pg_config(dsn, schema), 2)
    async with a.client() as ca:
        item = await ca.call("create_work_item", item_type="task", title="contended")
    await wait_seen(b, "query_work_item", id=item["id"])
    async with AsyncExitStack() as stack:
        cs = await clients(stack, [a, b], 20)
        results = await asyncio.gather(
            *(c.call("update_work_item", id=item["id"], version=1, title=f"winner {i}") for i, c in enumerate(cs)),
            return_exceptions=True,
        )
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, VersionMismatchError)]
    assert len(wins) == 1, results
    assert len(losses) == 19, results
    assert all(e.expected_version == 1 and e.actual_version == 2 for e in losses)
    assert wins[0]["version"] == 2 and wins[0]["sync"] == "confirmed"
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    hub = await hub_entities(dsn, schema)
    assert hub[item["id"]]["version"] == 2
    assert hub[item["id"]]["fields"]["title"] == wins[0]["title"]
    for d in (a, b):

        def versions(path: Any = d.store_path) -> list[int]:
            rows = store_rows(path, "SELECT version FROM history WHERE entity_id = ? ORDER BY version", item["id"])
            return [r[0] for r in rows]

        # The losing daemon's row already equals the hub's from its rejected verdicts; the winner's
        # history entry arrives with the pull that follows, which may come a moment later.
        await wait_for(lambda: versions() == [1, 2], what=f"history [1, 2] on {d.store_path}")
        assert versions() == [1, 2]  # the losers' local writes were withdrawn without a trace
        assert store_scalar(d.store_path, "SELECT COUNT(*) FROM conflicts") == 0


@pytest.mark.parametrize("by_id", [True, False], ids=["by-id", "next-ready"])
async def test_r4_twenty_concurrent_claims_across_two_daemons_one_claimant(
    fleet: Fleet, pg_schema: tuple[str, str], by_id: bool
) -> None:
    dsn, schema = pg_schema
    a, b = await start_online(fleet, pg_config(dsn, schema), 2)
    async with a.client() as ca:
        item = await ca.call("create_work_item", item_type="task", title="claim me")
    await wait_seen(b, "query_work_item", id=item["id"])
    args = {"id": item["id"]} if by_id else {}
    async with AsyncExitStack() as stack:
        cs = await clients(stack, [a, b], 20)
        results = await asyncio.gather(
            *(c.call("claim_work_item", actor=f"agent-{i}", **args) for i, c in enumerate(cs)), return_exceptions=True
        )
    claimed = [r for r in results if isinstance(r, dict) and r["claimed"]]
    assert len(claimed) == 1, results
    for r in results:
        if isinstance(r, BaseException):
            assert isinstance(r, (VersionMismatchError, ValidationError)), r
    winner = claimed[0]["claimed_by"]
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    assert (await hub_entities(dsn, schema))[item["id"]]["fields"]["claimed_by"] == winner
    for d in (a, b):
        got = await seen(d, "query_work_item", id=item["id"])
        assert got is not None and got["claimed_by"] == winner


async def test_confirmed_write_clashing_with_another_machine_is_a_version_mismatch(
    fleet: Fleet, pg_schema: tuple[str, str]
) -> None:
    """B has not yet heard of A's change when it writes: the hub, not B's store, catches the clash."""
    dsn, schema = pg_schema
    a, b = await start_online(fleet, pg_config(dsn, schema), 2)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        item = await ca.call("create_work_item", item_type="task", title="original")
        await wait_seen(b, "query_work_item", id=item["id"])

        # An open transaction holds every puller's cursor below it, so B cannot pull A's update yet.
        holder = await hub_connect(dsn)
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval("SELECT pg_current_xact_id()")
        try:
            theirs = await ca.call("update_work_item", id=item["id"], version=1, title="from A")
            assert_confirmed(theirs)
            assert (await cb.call("query_work_item", id=item["id"]))["version"] == 1  # B is behind

            with pytest.raises(VersionMismatchError) as info:
                await cb.call("update_work_item", id=item["id"], version=1, title="from B")
            assert "version mismatch" in str(info.value).lower()
            assert (info.value.expected_version, info.value.actual_version) == (1, 2)
            assert info.value.last_updated_by == "agent-a"

            # The withdrawn write left nothing behind; B now shows the hub's state, as a re-read needs.
            now = await cb.call("query_work_item", id=item["id"])
            assert (now["title"], now["version"]) == ("from A", 2)
            history = await cb.call("query_history", id=item["id"])
            assert all("from B" not in str(v) for v in history["versions"])
            retried = await cb.call("update_work_item", id=item["id"], version=2, title="from B, after re-read")
            assert_confirmed(retried)
            assert retried["version"] == 3
        finally:
            await tx.rollback()
            await holder.close()
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    assert (await hub_entities(dsn, schema))[item["id"]]["fields"]["title"] == "from B, after re-read"


async def test_async_write_mode_queues_and_still_converges(fleet: Fleet, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    a, b = await start_online(fleet, pg_config(dsn, schema, write_mode="async"), 2)
    async with a.client() as ca, b.client() as cb:
        item = await ca.call("create_work_item", item_type="task", title="async")
        assert item["sync"] == "queued" and item["success"] is True
        assert not any(w.startswith("database_unavailable") for w in item["warnings"])
        await wait_seen(b, "query_work_item", id=item["id"])
        upd = await cb.call("update_work_item", id=item["id"], version=1, priority="high")
        assert upd["sync"] == "queued"
        vendor = await cb.call("create_vendor", name="Async Vendor")
        assert vendor["sync"] == "queued"
    assert (await sync_status(a))["write_mode"] == "async"
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    hub = await hub_entities(dsn, schema)
    assert hub[item["id"]]["fields"]["priority"] == "high" and hub[item["id"]]["version"] == 2


async def offline_pair(
    fleet: Fleet, proxies: list[TcpProxy], dsn: str, schema: str
) -> tuple[DaemonProcess, DaemonProcess, TcpProxy, TcpProxy]:
    """Two daemons that reach the hub through proxies of their own (to cut them off one by one)."""
    pa, pb = TcpProxy.to(dsn), TcpProxy.to(dsn)
    proxies += [pa, pb]
    a = fleet.start(pg_config(pa.dsn_for(dsn), schema))
    b = fleet.start(pg_config(pb.dsn_for(dsn), schema))
    await wait_online(a)
    await wait_online(b)
    return a, b, pa, pb


async def wait_offline(d: DaemonProcess) -> None:
    async def probe() -> bool:
        return not (await sync_status(d))["postgres"]["reachable"]

    await wait_for(probe, what=f"{d.root.name} to notice Postgres is gone")


async def test_same_vendor_name_created_offline_on_two_machines(
    fleet: Fleet, pg_schema: tuple[str, str], proxies: list[TcpProxy]
) -> None:
    dsn, schema = pg_schema
    a, b, pa, pb = await offline_pair(fleet, proxies, dsn, schema)
    pa.set_mode("reset")
    pb.set_mode("reset")
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        va = await ca.call("create_vendor", name="Contoso", metadata={"extractor_version": "1.0.0"})
        vb = await cb.call("create_vendor", name="CONTOSO", metadata={"extractor_version": "2.0.0"})
        vb = await cb.call("update_vendor_status", name="contoso", version=1, status="operational")
        for r in (va, vb):
            assert r["sync"] == "queued", r
        assert va["id"] != vb["id"]

        pa.set_mode("pass")
        await wait_converged([a.store_path], dsn, schema)  # A's vendor reaches the hub first
        pb.set_mode("pass")
        await wait_converged([a.store_path, b.store_path], dsn, schema)

        for c in (ca, cb):
            listing = await c.call("query_vendor_status")
            assert [v["id"] for v in listing["vendors"]] == [va["id"]]
        conflicts = await cb.call("list_conflicts")
        assert conflicts["open_count"] == 1
        (conflict,) = conflicts["conflicts"]
        assert conflict["kind"] == "duplicate" and conflict["entity"] == "vendor"
        assert conflict["entity_id"] == va["id"]
        assert (await ca.call("list_conflicts"))["open_count"] == 0
        # B's answers carry the warning until someone decides.
        assert "open_conflicts: 1" in (await cb.call("query_vendor_status", name="Contoso"))["warnings"]

        # keep_local: B's vendor's status and metadata are applied to the surviving vendor.
        resolved = await cb.call("resolve_conflict", id=conflict["id"], resolution="keep_local")
        assert resolved["success"] is True and resolved["sync"] == "confirmed"
        assert (await cb.call("list_conflicts"))["open_count"] == 0
        final = await wait_seen(a, "query_vendor_status", lambda r: r["operational"] is True, name="contoso")
        assert final["id"] == va["id"]
        assert final["metadata"]["extractor_version"] == "2.0.0"
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    hub = await hub_entities(dsn, schema)
    assert [i for i, e in hub.items() if e["entity"] == "vendor"] == [va["id"]]


async def test_resolve_conflict_keep_local_keep_remote_and_custom_replicate(
    fleet: Fleet, pg_schema: tuple[str, str], proxies: list[TcpProxy]
) -> None:
    dsn, schema = pg_schema
    a, b, _pa, pb = await offline_pair(fleet, proxies, dsn, schema)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        items = [await ca.call("create_work_item", item_type="task", title=f"item {i}") for i in range(3)]
        for item in items:
            await wait_seen(b, "query_work_item", id=item["id"])

        pb.set_mode("reset")
        await wait_offline(b)
        for i, item in enumerate(items):
            offline = await cb.call("update_work_item", id=item["id"], version=1, title=f"B's title {i}",
                                    description=f"B's description {i}")  # fmt: skip
            assert offline["sync"] == "queued"
            assert any(w.startswith("database_unavailable") for w in offline["warnings"])
            assert any(w.startswith("queued_for_sync") for w in offline["warnings"])
            assert_confirmed(await ca.call("update_work_item", id=item["id"], version=1, title=f"A's title {i}"))
        pb.set_mode("pass")
        await wait_converged([a.store_path, b.store_path], dsn, schema)

        listed = await cb.call("list_conflicts")
        assert listed["open_count"] == 3
        by_item = {c["entity_id"]: c for c in listed["conflicts"]}
        for i, item in enumerate(items):
            c = by_item[item["id"]]
            assert c["kind"] == "field"
            assert c["fields"] == {
                "title": {"base": f"item {i}", "local": f"B's title {i}", "remote": f"A's title {i}"}
            }
            # The undisputed field merged; the hub's title stayed.
            now = await cb.call("query_work_item", id=item["id"])
            assert (now["title"], now["description"], now["version"]) == (f"A's title {i}", f"B's description {i}", 3)
        assert "open_conflicts: 3" in now["warnings"]

        keep_local = await cb.call("resolve_conflict", id=by_item[items[0]["id"]]["id"], resolution="keep_local")
        keep_remote = await cb.call("resolve_conflict", id=by_item[items[1]["id"]]["id"], resolution="keep_remote")
        custom = await cb.call("resolve_conflict", id=by_item[items[2]["id"]]["id"], resolution="custom",
                               values={"title": "agreed title"})  # fmt: skip
        for r in (keep_local, keep_remote, custom):
            assert r["success"] is True
        assert (await cb.call("list_conflicts"))["open_count"] == 0
        assert not any(w.startswith("open_conflicts") for w in custom["warnings"])
        with pytest.raises(ValidationError):
            await cb.call("resolve_conflict", id=by_item[items[0]["id"]]["id"], resolution="keep_remote")

        expected = ["B's title 0", "A's title 1", "agreed title"]
        versions = [4, 3, 4]  # keep_remote changes nothing
        for item, title, version in zip(items, expected, versions, strict=True):
            got = await wait_seen(a, "query_work_item", lambda r, t=title: r["title"] == t, id=item["id"])
            assert got["version"] == version
    await wait_converged([a.store_path, b.store_path], dsn, schema)
