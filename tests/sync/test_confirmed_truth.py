"""SPEC §5.3: ``sync: "confirmed"`` is a promise that the hub holds the value.

In-process replicas (a replicated Store, its Replicator and the tool dispatcher) against the real
hub; R1 reaches it through a TCP proxy that adds latency, so a second write can land on R1 while
the first one's verdict is still on its way back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sync_support import Replica, hub_connect, hub_entities, outbox_size, store_rows, wait_converged, wait_for
from tcp_proxy import TcpProxy

from statusd.daemon.service import Service

SLOW_MS = 150


def local_version(path: Path, ident: str) -> int | None:
    rows = store_rows(path, "SELECT version FROM work_items WHERE id = ?", ident)
    return int(rows[0][0]) if rows else None


class Machine:
    def __init__(self, root: Path, name: str, dsn: str, schema: str, proxy: TcpProxy | None = None) -> None:
        self.proxy = proxy
        self.replica = Replica(root / f"{name}.sqlite3", proxy.dsn_for(dsn) if proxy else dsn, schema, machine=name)
        self.replica.open().start()
        self.service = Service(self.replica.store, replicator=self.replica.replicator, confirm_timeout_s=5.0)

    async def call(self, tool: str, client: str = "c", **args: Any) -> dict[str, Any]:
        outcome = await self.service.call(tool, args, client=client)
        return dict(outcome.payload)

    async def close(self) -> None:
        await self.replica.close()
        if self.proxy is not None:
            self.proxy.close()


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
    theirs = await r2.call("update_work_item", id=x["id"], version=1, title="r2 title")
    assert theirs["sync"] == "confirmed" and theirs["version"] == 2
    # A hub transaction locks X's row, so c1's push stays in flight for as long as the test needs;
    # it also holds R1's pull cursor back (R1 cannot learn of R2's edit by pulling meanwhile).
    holder, observer = await hub_connect(dsn), await hub_connect(dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.fetchval(f"SELECT version FROM {schema}.entities WHERE id = $1 FOR UPDATE", x["id"])
    try:
        c1 = asyncio.create_task(r1.call("update_work_item", client="c1", id=x["id"], version=1, title="c1 title"))

        async def c1_in_flight() -> bool:
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
