"""The Replicator in-process: regressions that need precise control of the hub's transactions."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from sync_support import Replica, hub_connect, hub_entities, outbox_size, wait_for

from statusd.daemon.service import Service
from statusd.store import Store
from statusd.sync import pg_schema as hub_schema
from statusd.sync.replicator import Replicator


async def test_concurrent_create_of_the_same_entity_is_not_an_outage(
    tmp_path: Path, pg_schema: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: two machines creating one entity at the same moment (the configuration singleton
    and dependency edges have deterministic ids) made the slower push fail with a unique violation;
    the replicator logged a sync error, declared Postgres unreachable and backed off."""
    dsn, schema = pg_schema
    replica = Replica(tmp_path / "s.sqlite3", dsn, schema, machine="slow").open()
    (config_id,) = replica.store.reader.execute("SELECT id FROM configuration").fetchone()
    other, observer = await hub_connect(dsn), await hub_connect(dsn)
    try:
        await hub_schema.migrate(other, schema)
        tx = other.transaction()
        await tx.start()
        op = {
            "op_id": str(uuid.uuid4()), "entity": "configuration", "entity_id": config_id, "base_version": 0,
            "changes": {"active_context_type": {"old": None, "new": "feature"},
                        "default_token_budget": {"old": None, "new": 200000}},
            "at": "2026-01-01T00:00:00Z", "actor": "statusd", "machine": "fast", "via": "tool",
        }  # fmt: skip
        await other.fetchval(f"SELECT {schema}.apply_op($1::jsonb, false)", json.dumps(op))
        replica.start()

        async def blocked_on_our_row() -> bool:
            # Asked on a connection of its own: inside a transaction pg_stat_activity is a snapshot.
            waiting = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                f"%{schema}.apply_ops%",
            )
            return bool(waiting)

        await wait_for(blocked_on_our_row, what="the replica's push to wait for the other machine's create")
        await tx.commit()
        await wait_for(lambda: outbox_size(replica.path) == 0, what="the push to settle")
        assert replica.replicator is not None and replica.replicator.state.online
        complaints = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert complaints == []
        assert (await hub_entities(dsn, schema))[config_id]["version"] == 1
    finally:
        await other.close()
        await observer.close()
        await replica.close()


async def test_warnings_before_the_first_connection_and_when_stale(tmp_path: Path) -> None:
    """Warnings are answerable before the sync loop has run, and staleness past 30 min is a warning."""
    async with Store(tmp_path / "s.sqlite3", machine="m", replicated=True) as store:
        rep = Replicator(store, dsn="postgresql://127.0.0.1:1/none", password=None, schema="nowhere")
        warnings = rep.warnings(write=True)
        assert any(w.startswith("database_unavailable") for w in warnings)
        assert any(w.startswith("queued_for_sync") for w in warnings)
        assert not any(w.startswith("stale") for w in warnings)
        rep.state.last_pull_monotonic = time.monotonic() - 31 * 60
        assert "stale: last pull 31 min ago" in rep.warnings(write=False)


async def test_a_confirmed_write_is_never_pushed_as_a_queued_one(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    """Regression: the sync loop, woken by a NOTIFY, could read a confirmed write from the outbox
    between its commit and its caller starting to wait, and push it as a queued write. A clash with
    another machine then became a silent conflict record instead of the caller's version_mismatch."""
    dsn, schema = pg_schema
    replica = Replica(tmp_path / "s.sqlite3", dsn, schema, machine="here").open().start()
    await replica.wait_online()
    assert replica.replicator is not None
    service = Service(replica.store, replicator=replica.replicator, confirm_timeout_s=5)
    other, noise = await hub_connect(dsn), await hub_connect(dsn)
    stop = asyncio.Event()

    async def notify_storm() -> None:  # keeps the loop awake and reading the outbox
        while not stop.is_set():
            await noise.execute(f"NOTIFY {hub_schema.channel(schema)}")

    storm = asyncio.create_task(notify_storm())
    clashes = 0
    try:
        for i in range(40):
            created = await service.call("create_work_item", {"item_type": "task", "title": f"t{i}"})
            ident = created.payload["id"]
            holder = other.transaction()  # keeps the replica from pulling the other machine's change
            await holder.start()
            await other.fetchval("SELECT pg_current_xact_id()")
            writer = await hub_connect(dsn)
            try:
                op = {
                    "op_id": str(uuid.uuid4()), "entity": "work_item", "entity_id": ident, "base_version": 1,
                    "changes": {"title": {"old": f"t{i}", "new": "theirs"}},
                    "at": "2026-01-01T00:00:00Z", "actor": "elsewhere", "machine": "there", "via": "tool",
                }  # fmt: skip
                await writer.fetchval(f"SELECT {schema}.apply_op($1::jsonb, false)", json.dumps(op))
            finally:
                await writer.close()
            mine = await service.call("update_work_item", {"id": ident, "version": 1, "title": "mine"})
            await holder.rollback()
            assert mine.is_error, mine.payload
            assert mine.payload["error"]["code"] == "version_mismatch"
            clashes += 1
        assert clashes == 40
        assert replica.store.reader.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0
    finally:
        stop.set()
        await storm
        await other.close()
        await noise.close()
        await replica.close()
