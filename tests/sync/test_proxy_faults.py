"""Network faults between a daemon and the hub, and a crash between hub commit and local ack (R3)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator

import pytest
from mcp.shared.exceptions import MCPError
from sync_support import (
    Fleet,
    Workload,
    assert_no_lost_intent,
    found,
    hub_connect,
    hub_entities,
    hub_fetch,
    outbox_size,
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
from statusd.config import SyncSection
from statusd.sync.replicator import HEARTBEAT_S, HEARTBEAT_TIMEOUT_S, Replicator


@pytest.fixture
def proxy(pg_dsn: str) -> Iterator[TcpProxy]:
    with TcpProxy.to(pg_dsn) as p:
        yield p


async def reachable(d: DaemonProcess) -> bool:
    return bool((await sync_status(d))["postgres"]["reachable"])


async def wait_unreachable(d: DaemonProcess, within: float = 30.0) -> float:
    async def gone() -> bool:
        return not await reachable(d)

    started = time.monotonic()
    await wait_for(gone, within=within, what=f"{d.root.name} to notice the hub is gone")
    return time.monotonic() - started


async def test_delay_reset_and_blackhole_mid_run_writes_continue_and_catch_up(
    fleet: Fleet, pg_schema: tuple[str, str], proxy: TcpProxy
) -> None:
    dsn, schema = pg_schema
    a = fleet.start(pg_config(proxy.dsn_for(dsn), schema, confirm_timeout_ms=300))
    b = fleet.start(pg_config(dsn, schema))
    await wait_online(a)
    await wait_online(b)
    work = Workload(tag="r3")
    async with a.client("a1") as a1, a.client("a2") as a2:
        writers = [asyncio.create_task(work.writer(n, 0, c)) for n, c in (("a1", a1), ("a2", a2))]
        try:
            await wait_for(lambda: work.acked("online") >= 10, what="writes while connected")
            for fault in ("delay", "reset", "blackhole"):
                work.phase = fault
                proxy.set_mode(fault, delay_ms=40)
                await wait_for(lambda f=fault: work.acked(f) >= 10, what=f"writes during {fault}")
                work.phase = f"after {fault}"
                proxy.set_mode("pass")
                await wait_online(a)
                await wait_for(lambda f=fault: work.acked(f"after {f}") >= 5, what=f"writes after {fault}")
        finally:
            work.stop.set()
            await asyncio.gather(*writers)
    for o in work.outcomes:
        if o.phase in ("delay", "reset", "blackhole"):
            assert o.result["sync"] in ("queued", "confirmed"), o
    # 40 ms each way fits in the 300 ms confirmation window (when the link is not busy with the
    # other writer's push); a blackhole never answers.
    assert any(o.result["sync"] == "confirmed" for o in work.outcomes if o.phase == "delay")
    assert any(o.result["sync"] == "queued" for o in work.outcomes if o.phase == "blackhole")
    await wait_converged([a.store_path, b.store_path], dsn, schema)
    assert work.created.keys() <= (await hub_entities(dsn, schema)).keys()
    await assert_no_lost_intent(work.intents, [a.store_path], dsn, schema)


async def test_blackholed_listener_is_detected_by_the_heartbeat(
    fleet: Fleet, pg_schema: tuple[str, str], proxy: TcpProxy
) -> None:
    """An idle daemon whose connections silently stop answering notices within ~10 s, then reconnects."""
    dsn, schema = pg_schema
    # A process of its own: the ~10 s detection bound is about this daemon's timers, which the
    # test's own polling must not compete with for one interpreter.
    # The shipped timers (pg_config shortens them for other tests): the bound is about the defaults.
    a = fleet.start(
        pg_config(proxy.dsn_for(dsn), schema, pull_interval_s=600, heartbeat_s=5.0, max_backoff_s=10.0), process=True
    )
    b = fleet.start(pg_config(dsn, schema))
    await wait_online(a)
    await wait_online(b)
    proxy.set_mode("blackhole")
    took = await wait_unreachable(a, within=15)
    assert took < 12, f"a half-open connection went unnoticed for {took:.1f}s"
    status = await sync_status(a)
    assert status["postgres"]["last_error"]

    proxy.set_mode("pass")
    await wait_online(a)
    # The listener is live again: a change made elsewhere arrives by NOTIFY, long before the
    # 10-minute periodic pull would fetch it.
    async with b.client() as cb, a.client() as ca:
        item = await cb.call("create_work_item", item_type="task", title="made elsewhere")
        await wait_for(lambda: found(ca, item["id"]), within=5, what="the NOTIFY-driven pull on A")


COMMAND_TIMEOUT_S = inspect.signature(Replicator).parameters["command_timeout_s"].default


def test_the_shipped_timers_notice_a_half_open_connection_within_10_s() -> None:
    """The shipped timers the test above runs with: an idle link is caught by the next heartbeat and
    its timeout, a command in flight by its own timeout; both within ~10 s."""
    shipped = SyncSection()
    assert max(shipped.heartbeat_s + HEARTBEAT_TIMEOUT_S, COMMAND_TIMEOUT_S) <= 10.0
    assert shipped.heartbeat_s == HEARTBEAT_S  # the replicator's own default agrees with the config's


async def test_write_during_connection_loss_is_answered_not_dropped(
    fleet: Fleet, pg_schema: tuple[str, str], proxy: TcpProxy
) -> None:
    """Regression: a confirmed write whose push died with the connection cancelled the caller's
    waiter, and the cancellation escaped into the MCP session, which was closed without an answer."""
    dsn, schema = pg_schema
    a = fleet.start(pg_config(proxy.dsn_for(dsn), schema))
    await wait_online(a)
    async with a.client() as c:
        for i in range(5):
            proxy.set_mode("reset")  # the replicator has not noticed yet: it still believes it is online
            result = await c.call("create_work_item", item_type="task", title=f"written as the link drops {i}")
            assert result["success"] is True and result["sync"] in ("queued", "confirmed")
            proxy.set_mode("pass")
            await wait_online(a)
    await wait_converged([a.store_path], dsn, schema)


async def test_late_strict_rejection_after_the_caller_was_told_queued_is_kept(
    fleet: Fleet, pg_schema: tuple[str, str], proxy: TcpProxy
) -> None:
    """Regression: a confirmed write that timed out (so its caller heard "queued") and was then
    rejected by the hub was withdrawn: a silently lost, acknowledged write. It must merge instead."""
    dsn, schema = pg_schema
    a = fleet.start(pg_config(proxy.dsn_for(dsn), schema, confirm_timeout_ms=100))
    b = fleet.start(pg_config(dsn, schema))
    await wait_online(a)
    await wait_online(b)
    async with a.client("agent-a") as ca, b.client("agent-b") as cb:
        item = await cb.call("create_work_item", item_type="task", title="original")
        await wait_for(lambda: found(ca, item["id"]), what="the item on A")
        holder = await hub_connect(dsn)  # keeps A from pulling B's next change
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval("SELECT pg_current_xact_id()")
        try:
            assert (await cb.call("update_work_item", id=item["id"], version=1, title="B's"))["sync"] == "confirmed"
            proxy.set_mode("delay", delay_ms=400)
            mine = await ca.call("update_work_item", id=item["id"], version=1, title="A's")
            assert mine["sync"] == "queued"
            assert any("did not confirm" in w for w in mine["warnings"])
        finally:
            await tx.rollback()
            await holder.close()
        proxy.set_mode("pass")
        await wait_converged([a.store_path, b.store_path], dsn, schema)
        conflicts = (await ca.call("list_conflicts"))["conflicts"]
        assert [c["fields"]["title"]["local"] for c in conflicts] == ["A's"]
        assert (await ca.call("query_work_item", id=item["id"]))["title"] == "B's"


@pytest.mark.parametrize("write", ["create", "update"])
async def test_crash_after_hub_commit_replays_without_duplicate(
    fleet: Fleet, pg_schema: tuple[str, str], write: str
) -> None:
    dsn, schema = pg_schema
    config = pg_config(dsn, schema)
    d = fleet.start(config, name="m")
    await wait_online(d)
    async with d.client() as c:
        item = await c.call("create_work_item", item_type="task", title="before the crash")
    await wait_converged([d.store_path], dsn, schema)
    assert d.stop() == 0

    doomed = fleet.start(config, name="m", env={"STATUSD_CRASH_AT": "after_hub_commit"})
    await wait_online(doomed)
    with pytest.raises(MCPError, match="Connection closed"):  # the daemon dies before answering
        async with doomed.client() as c:
            if write == "create":
                await c.call("create_work_item", item_type="task", title="crashed create")
            else:
                await c.call("update_work_item", id=item["id"], version=1, title="crashed update")
    assert doomed.proc is not None and doomed.proc.wait(10) == 137
    assert "crash point after_hub_commit reached" in doomed.log()

    # The hub committed; the store never heard the verdict, so the op is still queued locally.
    assert outbox_size(d.store_path) == 1
    ((op_id,),) = store_rows(d.store_path, "SELECT op_id FROM outbox")
    assert len(await hub_fetch(dsn, f"SELECT 1 FROM {schema}.ops WHERE op_id = $1::uuid", op_id)) == 1

    again = fleet.start(config, name="m")
    await wait_online(again)
    await wait_converged([again.store_path], dsn, schema)
    assert len(await hub_fetch(dsn, f"SELECT 1 FROM {schema}.ops WHERE op_id = $1::uuid", op_id)) == 1
    changes = await hub_fetch(dsn, f"SELECT entity_id, version FROM {schema}.changes WHERE op_id = $1::uuid", op_id)
    assert len(changes) == 1
    hub = await hub_entities(dsn, schema)
    if write == "create":
        titles = [e["fields"]["title"] for e in hub.values() if e["entity"] == "work_item"]
        assert sorted(titles) == ["before the crash", "crashed create"]
        assert changes[0]["version"] == 1
    else:
        assert hub[item["id"]]["version"] == 2  # advanced once, not twice
        assert hub[item["id"]]["fields"]["title"] == "crashed update"
    assert store_scalar(again.store_path, "SELECT COUNT(*) FROM history WHERE op_id = ?", op_id) == 1
