"""Issue 6.3 and 6.4 with two daemons cut off from Postgres and reconnected (SPEC §5.4).

Metadata merges key by key; dependency edges added offline that together close a cycle become a
conflict at the hub, and no cycle reaches any store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_support import (
    Fleet,
    hub_connect,
    hub_entities,
    pg_config,
    store_rows,
    sync_status,
    wait_converged,
    wait_for,
    wait_online,
)
from tcp_proxy import TcpProxy

from daemon_support import DaemonProcess
from statusd.client import CycleDetectedError, DuplicateError, NotFoundError


@pytest.fixture
def proxies() -> Iterator[list[TcpProxy]]:
    opened: list[TcpProxy] = []
    try:
        yield opened
    finally:
        for p in opened:
            p.close()


async def pair(fleet: Fleet, proxies: list[TcpProxy], dsn: str, schema: str) -> list[tuple[DaemonProcess, TcpProxy]]:
    out = []
    for _ in range(2):
        proxy = TcpProxy.to(dsn)
        proxies.append(proxy)
        d = fleet.start(pg_config(proxy.dsn_for(dsn), schema))
        await wait_online(d)
        out.append((d, proxy))
    return out


async def cut(*machines: tuple[DaemonProcess, TcpProxy]) -> None:
    for _, proxy in machines:
        proxy.set_mode("reset")
    for d, _ in machines:

        async def down(d: DaemonProcess = d) -> bool:
            return not (await sync_status(d))["postgres"]["reachable"]

        await wait_for(down, what=f"{d.root.name} to notice Postgres is gone")


async def seen(d: DaemonProcess, ident: str) -> dict[str, Any] | None:
    async with d.client("observer") as c:
        try:
            return await c.call("query_work_item", id=ident)
        except NotFoundError:
            return None


def live_edges(store: Path) -> set[tuple[str, str, str]]:
    rows = store_rows(store, "SELECT work_item_id, depends_on_id, dependency_type FROM dependencies "
                             "WHERE deleted_at IS NULL")  # fmt: skip
    return {(r[0], r[1], r[2]) for r in rows}


def has_cycle(edges: set[tuple[str, str, str]]) -> bool:
    waits: dict[str, set[str]] = {}
    for a, b, kind in edges:
        waiter, prereq = (a, b) if kind == "depends_on" else (b, a)
        waits.setdefault(waiter, set()).add(prereq)

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in waits.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    return any(reaches(node, node, {node}) for node in waits)


async def test_different_metadata_keys_added_offline_on_two_machines_merge(
    fleet: Fleet, pg_schema: tuple[str, str], proxies: list[TcpProxy]
) -> None:
    dsn, schema = pg_schema
    (a, pa), (b, pb) = await pair(fleet, proxies, dsn, schema)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        base = {"estimated_hours": 3, "blocked_reason": "waiting"}
        disjoint = await ca.call("create_work_item", item_type="task", title="disjoint", metadata=base)
        clash = await ca.call("create_work_item", item_type="task", title="clash", metadata=base)
        for item in (disjoint, clash):
            await wait_for(lambda i=item: seen(b, i["id"]), what="the items to reach B")

        await cut((a, pa), (b, pb))
        r1 = await ca.call("update_work_item", id=disjoint["id"], version=1, metadata={"from_a": "a"})
        r2 = await cb.call("update_work_item", id=disjoint["id"], version=1, metadata={"from_b": "b"})
        r3 = await ca.call("update_work_item", id=clash["id"], version=1,
                           metadata={"blocked_reason": "A's reason", "actual_hours": 1})  # fmt: skip
        r4 = await cb.call("update_work_item", id=clash["id"], version=1,
                           metadata={"blocked_reason": "B's reason", "estimated_hours": 8})  # fmt: skip
        assert all(r["sync"] == "queued" for r in (r1, r2, r3, r4))

        pa.set_mode("pass")
        await wait_converged([a.store_path], dsn, schema)
        pb.set_mode("pass")
        await wait_converged([a.store_path, b.store_path], dsn, schema)

        hub = await hub_entities(dsn, schema)
        assert hub[disjoint["id"]]["fields"]["metadata"] == {**base, "from_a": "a", "from_b": "b"}
        assert hub[clash["id"]]["fields"]["metadata"] == {
            "estimated_hours": 8, "blocked_reason": "A's reason", "actual_hours": 1,
        }  # fmt: skip
        assert (await ca.call("list_conflicts"))["open_count"] == 0
        (conflict,) = (await cb.call("list_conflicts"))["conflicts"]
        assert conflict["entity_id"] == clash["id"]
        assert conflict["fields"] == {
            "metadata.blocked_reason": {"base": "waiting", "local": "B's reason", "remote": "A's reason"}
        }
        resolved = await cb.call("resolve_conflict", id=conflict["id"], resolution="keep_local")
        assert resolved["item"]["metadata"]["blocked_reason"] == "B's reason"
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    final = (await hub_entities(dsn, schema))[clash["id"]]["fields"]["metadata"]
    assert final == {"estimated_hours": 8, "blocked_reason": "B's reason", "actual_hours": 1}


async def test_dependency_edges_added_offline_that_close_a_cycle_become_a_conflict(
    fleet: Fleet, pg_schema: tuple[str, str], proxies: list[TcpProxy]
) -> None:
    dsn, schema = pg_schema
    (a, pa), (b, pb) = await pair(fleet, proxies, dsn, schema)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        x = await ca.call("create_work_item", item_type="task", title="X")
        y = await ca.call("create_work_item", item_type="task", title="Y")
        await wait_for(lambda: seen(b, y["id"]), what="Y to reach B")

        await cut((a, pa), (b, pb))
        ea = await ca.call("add_dependency", work_item_id=x["id"], depends_on_id=y["id"], dependency_type="depends_on")
        eb = await cb.call("add_dependency", work_item_id=y["id"], depends_on_id=x["id"], dependency_type="depends_on")
        assert ea["sync"] == eb["sync"] == "queued"

        pa.set_mode("pass")
        await wait_converged([a.store_path], dsn, schema)
        pb.set_mode("pass")
        await wait_converged([a.store_path, b.store_path], dsn, schema)

        for d in (a, b):
            edges = live_edges(d.store_path)
            assert edges == {(x["id"], y["id"], "depends_on")}, d.root.name
            assert not has_cycle(edges)
        (conflict,) = (await cb.call("list_conflicts"))["conflicts"]
        assert conflict["entity"] == "dependency" and conflict["entity_id"] == eb["id"]
        assert "would close a cycle" in conflict["reason"]
        assert set(conflict["fields"]) == {"deleted_at"}
        # Y is ready again on both machines (it waits for nothing); X waits for Y.
        for c in (ca, cb):
            ready = {i["id"] for i in (await c.call("list_work_items", ready=True))["items"]}
            assert y["id"] in ready and x["id"] not in ready

        # Keeping B's edge while A's stands would close the cycle: refused, the record stays open.
        with pytest.raises(CycleDetectedError):
            await cb.call("resolve_conflict", id=conflict["id"], resolution="keep_local")
        assert (await cb.call("list_conflicts"))["open_count"] == 1
        await ca.call("remove_dependency", work_item_id=x["id"], depends_on_id=y["id"], dependency_type="depends_on")
        await wait_for(lambda: not live_edges(b.store_path), what="the removal to reach B")
        kept = await cb.call("resolve_conflict", id=conflict["id"], resolution="keep_local")
        assert kept["sync"] == "confirmed" and kept["item"]["deleted_at"] is None
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    for d in (a, b):
        assert live_edges(d.store_path) == {(y["id"], x["id"], "depends_on")}


async def test_a_confirmed_edge_closing_a_cycle_the_machine_has_not_seen_is_cycle_detected(
    fleet: Fleet, pg_schema: tuple[str, str], proxies: list[TcpProxy]
) -> None:
    dsn, schema = pg_schema
    (a, _pa), (b, _pb) = await pair(fleet, proxies, dsn, schema)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        x = await ca.call("create_work_item", item_type="task", title="X")
        y = await ca.call("create_work_item", item_type="task", title="Y")
        await wait_for(lambda: seen(b, y["id"]), what="Y to reach B")
        # An open transaction holds B's pull cursor back, so B cannot see A's edge yet.
        holder = await hub_connect(dsn)
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval("SELECT pg_current_xact_id()")
        try:
            edge = await ca.call("add_dependency", work_item_id=x["id"], depends_on_id=y["id"],
                                 dependency_type="depends_on")  # fmt: skip
            assert edge["sync"] == "confirmed"
            assert not live_edges(b.store_path)
            with pytest.raises(CycleDetectedError) as info:
                await cb.call("add_dependency", work_item_id=y["id"], depends_on_id=x["id"],
                              dependency_type="depends_on")  # fmt: skip
            assert "would close a cycle" in str(info.value)
            assert (await cb.call("list_conflicts"))["open_count"] == 0
            assert not live_edges(b.store_path)
        finally:
            await tx.rollback()
            await holder.close()
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    for d in (a, b):
        assert live_edges(d.store_path) == {(x["id"], y["id"], "depends_on")}


async def test_a_confirmed_duplicate_vendor_leaves_nothing_behind(
    fleet: Fleet, pg_schema: tuple[str, str], proxies: list[TcpProxy]
) -> None:
    """Regression (R5 flake): the losing machine kept a hidden vendor the hub never had, so its store
    never equalled the hub again."""
    dsn, schema = pg_schema
    (a, _pa), (b, _pb) = await pair(fleet, proxies, dsn, schema)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        holder = await hub_connect(dsn)
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval("SELECT pg_current_xact_id()")  # B cannot pull A's vendor yet
        try:
            won = await ca.call("create_vendor", name="Initech")
            assert won["sync"] == "confirmed"
            with pytest.raises(DuplicateError):
                await cb.call("create_vendor", name="INITECH")
            assert (await cb.call("list_conflicts"))["open_count"] == 0
        finally:
            await tx.rollback()
            await holder.close()
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    names = store_rows(b.store_path, "SELECT id FROM vendors")
    assert names == [(won["id"],)]
