"""SPEC §5.3: ``sync: "confirmed"`` is a promise that the hub holds the value.

In-process replicas (a replicated Store, its Replicator and the tool dispatcher) against the real
hub; R1 reaches it through a TCP proxy that adds latency, so a second write can land on R1 while
the first one's verdict is still on its way back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sync_support import (
    Intent,
    Machine,
    assert_no_lost_intent,
    hub_connect,
    hub_entities,
    hub_fetch,
    local_version,
    outbox_size,
    wait_converged,
    wait_for,
)
from tcp_proxy import TcpProxy

SLOW_MS = 150
STRESS_S = 30.0 if os.environ.get("STATUSD_SOAK") == "1" else 3.0


@pytest.fixture
async def pair(tmp_path: Path, pg_schema: tuple[str, str]) -> AsyncIterator[tuple[Machine, Machine]]:
    dsn, schema = pg_schema
    slow = TcpProxy.to(dsn)
    r1 = Machine(tmp_path, "r1", dsn, schema, slow)
    r2 = Machine(tmp_path, "r2", dsn, schema)
    try:
        await r1.replica.wait_online()
        await r2.replica.wait_online()
        slow.set_mode("delay", SLOW_MS)
        yield r1, r2
    finally:
        await r1.close()
        await r2.close()


async def test_a_rejected_write_never_stays_in_the_store_and_a_retry_reaches_the_hub(
    pair: tuple[Machine, Machine], pg_schema: tuple[str, str]
) -> None:
    """Regression (issue 6.1): c1's rejected title stayed on R1 under c2's later version, and c1's
    retry at that version changed nothing locally and was answered ``confirmed`` without reaching the
    hub; R2's title then won everywhere and no conflict recorded c1's intent."""
    r1, r2 = pair
    dsn, schema = pg_schema
    x = await r2.call("create_work_item", item_type="task", title="original")
    assert x["sync"] == "confirmed"
    await wait_for(lambda: local_version(r1.replica.path, x["id"]), what="R1 to pull X")
    # A hub transaction that started before R2's edit holds R1's pull cursor back (R1 cannot learn of
    # the edit by pulling meanwhile); after the edit it locks X's row, so c1's push stays in flight
    # for as long as the test needs.
    holder, observer = await hub_connect(dsn), await hub_connect(dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.fetchval("SELECT pg_current_xact_id()")
    try:
        theirs = await r2.call("update_work_item", id=x["id"], version=1, title="r2 title")
        assert theirs["sync"] == "confirmed" and theirs["version"] == 2
        await holder.fetchval(f"SELECT version FROM {schema}.entities WHERE id = $1 FOR UPDATE", x["id"])
        c1 = asyncio.create_task(r1.call("update_work_item", client="c1", id=x["id"], version=1, title="c1 title"))

        async def c1_in_flight() -> bool:
            if c1.done():
                raise AssertionError(f"c1 was answered before its push reached the hub: {c1.result()}")
            return bool(
                await observer.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                    f"%{schema}.apply_ops%",
                )
            )

        await wait_for(c1_in_flight, what="c1's push to reach the hub")
        # c2 writes on top of c1's local version 2 while c1's verdict is still to come.
        c2_task = asyncio.create_task(r1.call("update_work_item", client="c2", id=x["id"], version=2, priority="high"))
        await wait_for(lambda: local_version(r1.replica.path, x["id"]) == 3, what="c2's local commit")
    finally:
        await tx.rollback()
        await holder.close()
        await observer.close()
    rejected = await c1
    assert rejected["error"]["code"] == "version_mismatch", rejected

    # c1 re-reads on R1: the hub's state (R2's title) with R1's still-pending work on top.
    seen = await r1.call("query_work_item", client="c1", id=x["id"])
    assert seen["title"] == "r2 title", seen
    retry = await r1.call("update_work_item", client="c1", id=x["id"], version=seen["version"], title="c1 title")
    if "error" in retry:
        assert retry["error"]["code"] == "version_mismatch"  # c2's write moved the item on: honest
    else:
        hub = (await hub_entities(dsn, schema))[x["id"]]
        assert retry["sync"] == "confirmed"
        assert hub["fields"]["title"] == "c1 title", "confirmed, but the hub does not hold it"
        assert hub["version"] == retry["version"]
    c2 = await c2_task
    if "error" not in c2:
        hub = (await hub_entities(dsn, schema))[x["id"]]
        assert c2["sync"] == "confirmed" and hub["fields"]["priority"] == "high"
    paths = [r1.replica.path, r2.replica.path]
    await wait_converged(paths, dsn, schema)


async def test_a_write_that_changes_nothing_locally_is_confirmed_only_if_the_hub_agrees(
    pair: tuple[Machine, Machine], pg_schema: tuple[str, str]
) -> None:
    """R1 has not heard of R2's edit; a no-op write on R1 at the old version is not ``confirmed``."""
    r1, r2 = pair
    dsn, schema = pg_schema
    x = await r2.call("create_work_item", item_type="task", title="same")
    await wait_for(lambda: local_version(r1.replica.path, x["id"]), what="R1 to pull X")
    holder = await hub_connect(dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.fetchval("SELECT pg_current_xact_id()")
    try:
        await r2.call("update_work_item", id=x["id"], version=1, title="changed on r2")
        stale = await r1.call("update_work_item", id=x["id"], version=1, title="same")
        assert stale.get("error", {}).get("code") == "version_mismatch", stale
        assert stale["error"]["details"]["actual_version"] == 2
        # The rejection brought the hub's state: a re-read and retry is judged against the truth.
        seen = await r1.call("query_work_item", id=x["id"])
        assert (seen["title"], seen["version"]) == ("changed on r2", 2)
        agreed = await r1.call("update_work_item", id=x["id"], version=2, title="changed on r2")
        assert agreed["sync"] == "confirmed" and agreed["version"] == 2
    finally:
        await tx.rollback()
        await holder.close()
    await wait_for(lambda: outbox_size(r1.replica.path) == 0, what="R1's outbox to drain")
    assert (await hub_entities(dsn, schema))[x["id"]]["version"] == 2


@dataclass(frozen=True)
class Ack:
    machine: int
    entity_id: str
    field: str
    value: str
    sync: str


async def test_concurrent_confirmed_writers_on_three_machines_one_slow(
    tmp_path: Path, pg_schema: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every ``confirmed`` acknowledgement is on the hub; every ``queued`` one is on the hub, in a
    conflict record of its machine, or superseded by that machine's own later write.

    Writers re-read and retry a rejected value once at the new version (the pattern that was told
    ``confirmed`` for a value the hub never saw). The slow machine's short confirm timeout turns some
    of its writes into queued ones while their verdicts are still on the way.
    """
    dsn, schema = pg_schema
    slow = TcpProxy.to(dsn)
    machines = [
        Machine(tmp_path, "slow", dsn, schema, slow, timeout_s=0.4),
        Machine(tmp_path, "fast1", dsn, schema),
        Machine(tmp_path, "fast2", dsn, schema),
    ]
    try:
        for m in machines:
            await m.replica.wait_online()
        items = [
            (await machines[1].call("create_work_item", item_type="task", title=f"shared {n}"))["id"] for n in range(4)
        ]
        for m in machines:
            await wait_for(
                lambda m=m: all(local_version(m.replica.path, i) for i in items), what="every item everywhere"
            )
        slow.set_mode("delay", SLOW_MS)
        acks: list[Ack] = []
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + STRESS_S

        async def writer(index: int, name: str, seed: int) -> None:
            rng = random.Random(seed)
            m = machines[index]
            retry: tuple[str, str, str] | None = None
            n = 0
            while loop.time() < stop_at:
                n += 1
                ident, field, value = retry or (rng.choice(items), rng.choice(["title", "description"]), f"{name}-{n}")
                if retry is None and rng.random() < 0.25:
                    field, value = "priority", rng.choice(["low", "medium", "high"])  # disjoint-field traffic
                seen = await m.call("query_work_item", id=ident)
                out = await m.call("update_work_item", client=name, id=ident, version=seen["version"], **{field: value})
                if "error" in out:
                    assert out["error"]["code"] == "version_mismatch", out
                    retry = (ident, field, value) if retry is None else None
                    continue
                retry = None
                assert out["sync"] in ("confirmed", "queued"), out
                assert len({w.split(":")[0] for w in out["warnings"]}) == len(out["warnings"]), out["warnings"]
                acks.append(Ack(index, ident, field, value, out["sync"]))

        await asyncio.gather(*(writer(i, f"w{i}{k}", 100 * i + k) for i in range(3) for k in range(3)))
        slow.set_mode("pass")
        paths = [m.replica.path for m in machines]
        await wait_converged(paths, dsn, schema, within=60)

        held: dict[tuple[str, str], set[Any]] = {}
        for entity_id, data in await hub_fetch(dsn, f"SELECT entity_id, data::text FROM {schema}.changes"):
            for k, v in json.loads(data).items():
                if k in ("title", "description", "priority"):
                    held.setdefault((entity_id, k), set()).add(v)
        confirmed = [a for a in acks if a.sync == "confirmed"]
        untrue = [a for a in confirmed if a.value not in held.get((a.entity_id, a.field), set())]
        assert not untrue, f"{len(untrue)} of {len(confirmed)} confirmed writes never reached the hub: {untrue[:5]}"
        intents = [Intent(a.machine, a.entity_id, a.field, a.value, unique=a.field != "priority") for a in acks]
        await assert_no_lost_intent(intents, paths, dsn, schema)
        assert len(confirmed) > 20 and any(a.sync == "queued" for a in acks), (len(confirmed), len(acks))
        complaints = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert complaints == [], "the sync loop went down under load"
    finally:
        for m in machines:
            await m.close()
