"""Issue 6.2(b) with the values that broke replication: a NUL and an infinite number in one batch.

Written through the store's own write path (as a statusd without the tool-boundary checks would
have accepted them), so only the hub objects: Postgres cannot hold either in JSONB, which fails
the cast of the whole batch before any operation runs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sync_support import Replica, hub_entities, outbox_size, store_rows, wait_for

from statusd.models import ListConflictsArgs
from statusd.store import WriteContext
from statusd.store import entities as ent
from statusd.store.conflicts import list_conflicts

ITEM = {"item_type": "task", "status": "active", "priority": "medium", "depth": 0}


def create(conn: sqlite3.Connection, ctx: WriteContext, title: str, metadata: dict[str, Any]) -> str:
    return str(ent.insert(conn, ctx, ent.WORK_ITEM, {**ITEM, "title": title, "metadata": metadata})["id"])


async def test_a_nul_and_an_infinity_are_set_aside_and_the_good_writes_go_through(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    replica = Replica(tmp_path / "s.sqlite3", dsn, schema, machine="m1").open()
    try:
        ctx = lambda: WriteContext(actor="tester")  # noqa: E731
        good1 = await replica.store.write(create, ctx(), "good one", {})
        nul = await replica.store.write(create, ctx(), "nul \x00 here", {})
        inf = await replica.store.write(create, ctx(), "infinite", {"estimated_hours": float("inf")})
        good2 = await replica.store.write(create, ctx(), "good two", {"k": "v"})
        replica.start()
        await wait_for(lambda: outbox_size(replica.path) == 0, what="the outbox to drain")
        hub = await hub_entities(dsn, schema)
        assert good1 in hub and good2 in hub and nul not in hub and inf not in hub
        listed = replica.store.read(list_conflicts, ListConflictsArgs())
        by_id = {c["entity_id"]: c for c in listed["conflicts"]}
        assert set(by_id) == {nul, inf} and all(c["kind"] == "rejected" for c in by_id.values())
        assert by_id[nul]["fields"]["title"]["local"] == "nul \x00 here"
        assert by_id[inf]["fields"]["metadata"]["local"] == {"estimated_hours": "inf"}  # shown as text
        assert "refused by the hub" in by_id[nul]["reason"]
        # Kept whole: the record's operation still carries the value as written.
        (raw,) = store_rows(replica.path, "SELECT local_op FROM conflicts WHERE entity_id = ?", inf)[0]
        assert "Infinity" in raw
        assert replica.replicator is not None and replica.replicator.state.online
    finally:
        await replica.close()
