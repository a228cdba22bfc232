"""R9: a hub schema created and filled by release v0.1.0 is migrated by this code, nothing lost.

The dump (tests/fixtures/v0_1_0/hub.sql) is restored into a fresh schema; this code's migration runs
on it; then the v0.1.0 store fixture, with its pending outbox, syncs against it and converges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sync_support import Replica, hub_connect, store_scalar, wait_converged, wait_for

from statusd.sync import pg_schema as hub_schema
from upgrade_support import copy_v010_store, restore_v010_hub, v010_counts


async def hub_snapshot(dsn: str, schema: str) -> dict[str, list[Any]]:
    conn = await hub_connect(dsn)
    try:
        queries = {
            "entities": "SELECT id, entity, version, data::text, updated_at, updated_by, machine "
            f"FROM {schema}.entities",
            "changes": "SELECT seq, txid::text, entity_id, version, data::text, changes::text, op_id "
            f"FROM {schema}.changes",
            "ops": f"SELECT op_id, machine, result::text FROM {schema}.ops",
        }
        return {name: sorted(tuple(r) for r in await conn.fetch(sql)) for name, sql in queries.items()}
    finally:
        await conn.close()


async def test_the_v010_hub_migrates_in_place_with_nothing_lost(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    await restore_v010_hub(dsn, schema)
    counts = v010_counts()["hub"]
    before = await hub_snapshot(dsn, schema)
    assert {k: len(v) for k, v in before.items()} == {k: counts[k] for k in ("entities", "changes", "ops")}
    conn = await hub_connect(dsn)
    try:
        assert await conn.fetchval(f"SELECT max(version) FROM {schema}.schema_version") == counts["schema_version"]
        assert await hub_schema.migrate(conn, schema) == hub_schema.LATEST_VERSION
        versions = [r[0] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_version ORDER BY 1")]
        assert versions == list(range(1, hub_schema.LATEST_VERSION + 1))
        # The old operation ids still answer with their recorded verdict (replays change nothing).
        op_id, result = (await conn.fetch(f"SELECT op_id, result FROM {schema}.ops LIMIT 1"))[0]
        replay = json.loads(
            await conn.fetchval(
                f"SELECT {schema}.apply_op($1::jsonb, false)",
                json.dumps(
                    {
                        "op_id": str(op_id),
                        "entity": "work_item",
                        "entity_id": "x",
                        "base_version": 0,
                        "changes": {},
                        "at": "2026-01-01T00:00:00Z",
                        "actor": "a",
                        "machine": "m",
                        "via": "tool",
                    }
                ),
            )
        )
        assert replay["replayed"] is True and replay["verdict"] == json.loads(result)["verdict"]
    finally:
        await conn.close()
    assert await hub_snapshot(dsn, schema) == before, "the migration changed or lost hub rows"


async def test_the_v010_store_and_hub_sync_after_the_upgrade(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    await restore_v010_hub(dsn, schema)
    counts = v010_counts()
    path = copy_v010_store(tmp_path / "here")
    assert store_scalar(path, "SELECT COUNT(*) FROM outbox") == counts["store"]["outbox"]
    replica = Replica(path, dsn, schema, machine="fixture-here", pull_interval_s=0.5).open().start()
    try:
        await replica.wait_online()
        await wait_for(lambda: store_scalar(path, "SELECT COUNT(*) FROM outbox") == 0, what="the old outbox to drain")
        await wait_converged([path], dsn, schema)
        conn = await hub_connect(dsn)
        try:
            titles = {r[0] for r in await conn.fetch(f"SELECT data->>'title' FROM {schema}.entities")}
        finally:
            await conn.close()
        assert "Written offline" in titles, "the write queued offline under v0.1.0 reached the hub"
        assert store_scalar(path, "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL") == 1
    finally:
        await replica.close()
