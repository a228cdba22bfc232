"""The pull cursor cannot skip a transaction that commits out of order (SPEC §5.5, §13).

A change's ``seq`` is taken when it is inserted, but it becomes visible when its transaction commits.
A slow transaction T1 that inserted first and commits last has the smaller ``seq``: a puller that
already moved its cursor past the faster T2's ``seq`` would never see T1. The replicator's
``(txid, seq)`` cursor stays below the oldest running transaction, so it waits for T1 instead.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sync_support import Replica, hub_connect, store_scalar, wait_for

from statusd.sync import pg_schema as hub_schema


def create_op(title: str) -> dict[str, object]:
    ident = str(uuid.uuid4())
    return {
        "op_id": str(uuid.uuid4()),
        "entity": "work_item",
        "entity_id": ident,
        "base_version": 0,
        "changes": {
            "item_type": {"old": None, "new": "task"},
            "title": {"old": None, "new": title},
            "status": {"old": None, "new": "active"},
            "priority": {"old": None, "new": "medium"},
            "metadata": {"old": None, "new": {}},
        },
        "at": "2026-01-01T00:00:00Z",
        "actor": "other-machine",
        "machine": "elsewhere",
        "via": "tool",
    }


async def apply(conn: asyncpg.Connection, schema: str, op: dict[str, object]) -> None:
    raw = await conn.fetchval(f"SELECT {schema}.apply_op($1::jsonb, false)::text", json.dumps(op))
    assert json.loads(raw)["verdict"] == "applied"


@pytest.fixture
async def replica(tmp_path: Path, pg_schema: tuple[str, str]) -> AsyncIterator[Replica]:
    dsn, schema = pg_schema
    r = Replica(tmp_path / "store.sqlite3", dsn, schema, machine="puller").open().start()
    try:
        await r.wait_online()
        yield r
    finally:
        await r.close()


def has_item(r: Replica, ident: str) -> bool:
    return bool(store_scalar(r.path, "SELECT COUNT(*) FROM work_items WHERE id = ?", ident))


def cursor_txid(r: Replica) -> int:
    value = r.store.meta("pull_cursor") or "0:0"
    return int(value.partition(":")[0])


async def test_slow_transaction_committing_after_a_faster_one_is_still_delivered(
    replica: Replica, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    slow, fast = await hub_connect(dsn), await hub_connect(dsn)
    try:
        t1 = slow.transaction()
        await t1.start()
        first = create_op("slow T1")
        await apply(slow, schema, first)  # seq n, not yet committed
        t1_xid = int(await slow.fetchval("SELECT pg_current_xact_id()::text"))

        second = create_op("fast T2")
        await apply(fast, schema, second)  # seq n+1, committed (autocommit) and NOTIFYed
        naive_cursor = await fast.fetchval(f"SELECT max(seq) FROM {schema}.changes")

        # Let the replicator pull at least once after T2 committed (T2's NOTIFY wakes it).
        assert replica.replicator is not None
        marker = asyncio.get_running_loop().time()
        await fast.execute(f"NOTIFY {hub_schema.channel(schema)}")
        await wait_for(
            lambda: (
                replica.replicator is not None
                and replica.replicator.state.last_pull_monotonic is not None
                and replica.replicator.state.last_pull_monotonic > marker
            ),
            what="a pull after T2's commit",
        )
        # Delivering T2 now would move the cursor past T1's transaction id and lose T1 for good.
        # (Judged by T2's own item, not the pull counter: the replica's own start-up traffic may
        # legitimately be pulled in this window; it committed before T1 began.)
        assert cursor_txid(replica) < t1_xid
        assert not has_item(replica, second["entity_id"]) and not has_item(replica, first["entity_id"])

        await t1.commit()
        await wait_for(lambda: has_item(replica, first["entity_id"]) and has_item(replica, second["entity_id"]),
                       what="both transactions' changes in the store")  # fmt: skip

        # The hazard was real: T1's change sits below where a plain "seq > cursor" pull had got to.
        t1_seq = await fast.fetchval(f"SELECT seq FROM {schema}.changes WHERE entity_id = $1", first["entity_id"])
        assert t1_seq < naive_cursor
        missed_by_naive = await fast.fetchval(
            f"SELECT count(*) FROM {schema}.changes WHERE seq > $1 AND entity_id = $2", naive_cursor, first["entity_id"]
        )
        assert missed_by_naive == 0
    finally:
        await slow.close()
        await fast.close()


async def test_many_interleaved_transactions_all_arrive(replica: Replica, pg_schema: tuple[str, str]) -> None:
    """Writers whose transactions overlap and commit in random order: the replica gets every change."""
    dsn, schema = pg_schema
    rng = random.Random(5)
    created: list[str] = []

    async def writer(n: int) -> None:
        conn = await hub_connect(dsn)
        try:
            for i in range(6):
                async with conn.transaction():
                    op = create_op(f"w{n}-{i}")
                    await apply(conn, schema, op)
                    created.append(str(op["entity_id"]))
                    # Hold the transaction open a little so commits land out of insertion order.
                    await conn.execute("SELECT pg_sleep($1)", rng.random() * 0.05)
        finally:
            await conn.close()

    await asyncio.gather(*(writer(n) for n in range(6)))
    await wait_for(
        lambda: all(has_item(replica, ident) for ident in created), what="every committed change in the store"
    )
    assert store_scalar(replica.path, "SELECT COUNT(*) FROM work_items") == len(created) == 36


async def test_changes_held_back_by_an_unrelated_transaction_arrive_when_it_ends(
    replica: Replica, pg_schema: tuple[str, str]
) -> None:
    """Regression: a change whose NOTIFY came while an older transaction (another project's, a
    report) held the cursor back waited for the periodic pull, here 300 s, after that one ended."""
    dsn, schema = pg_schema
    holder, writer = await hub_connect(dsn), await hub_connect(dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval("SELECT pg_current_xact_id()")  # holds pg_snapshot_xmin; never NOTIFYs
        op = create_op("committed behind an older transaction")
        marker = asyncio.get_running_loop().time()
        await apply(writer, schema, op)
        assert replica.replicator is not None
        state = replica.replicator.state
        await wait_for(lambda: (state.last_pull_monotonic or 0) > marker, what="the NOTIFY-driven pull")
        assert not has_item(replica, str(op["entity_id"]))  # held back, as it must be
        await tx.rollback()
        await wait_for(lambda: has_item(replica, str(op["entity_id"])), within=5, what="the held-back change")
    finally:
        await holder.close()
        await writer.close()
