"""The hub schema (SPEC §5.1) and the server-side compare-and-set/merge ``apply_op`` (SPEC §5.2–§5.4)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest
from hub_support import apply, create_op, entity_row, op
from sync_support import Fleet, hub_connect, pg_config, sync_status, wait_for

from statusd.sync import pg_schema as hub_schema


async def count(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await conn.fetchval(sql, *args))


# --- migrations ---------------------------------------------------------------------------------


async def catalog(conn: asyncpg.Connection, schema: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 UNION ALL "
        "SELECT p.proname, 'f' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 "
        "ORDER BY 1, 2",
        schema,
    )
    return [(r[0], r[1]) for r in rows]


async def test_migrate_twice_is_a_no_op(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    conn = await hub_connect(dsn)
    try:
        assert await hub_schema.migrate(conn, schema) == hub_schema.LATEST_VERSION
        before = await catalog(conn, schema)
        versions = await conn.fetch(f"SELECT version, name, applied_at FROM {schema}.schema_version")
        assert ("entities", "r") in before and ("apply_op", "f") in before and ("apply_ops", "f") in before

        assert await hub_schema.migrate(conn, schema) == hub_schema.LATEST_VERSION
        assert await catalog(conn, schema) == before
        assert await conn.fetch(f"SELECT version, name, applied_at FROM {schema}.schema_version") == versions
    finally:
        await conn.close()


async def test_concurrent_first_migrations_serialise_on_the_advisory_lock(pg_schema: tuple[str, str]) -> None:
    """Several daemons starting at once against an empty schema: one creates it, the others see it done."""
    dsn, schema = pg_schema
    conns = [await hub_connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(hub_schema.migrate(c, schema) for c in conns))
        assert results == [hub_schema.LATEST_VERSION] * 4
        assert await count(conns[0], f"SELECT count(*) FROM {schema}.schema_version") == hub_schema.LATEST_VERSION
    finally:
        for c in conns:
            await c.close()


async def test_a_newer_schema_refuses_to_migrate(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    await conn.execute(f"INSERT INTO {schema}.schema_version(version, name) VALUES (99, 'from_the_future')")
    with pytest.raises(hub_schema.SchemaTooNewError) as info:
        await hub_schema.migrate(conn, schema)
    assert (info.value.found, info.value.known) == (99, hub_schema.LATEST_VERSION)
    assert "99" in str(info.value) and "sync is paused" in str(info.value)


async def test_daemon_facing_a_newer_schema_pauses_sync_and_keeps_serving(
    pg_schema: tuple[str, str], fleet: Fleet
) -> None:
    dsn, schema = pg_schema
    conn = await hub_connect(dsn)
    try:
        await hub_schema.migrate(conn, schema)
        await conn.execute(f"INSERT INTO {schema}.schema_version(version, name) VALUES (99, 'from_the_future')")
    finally:
        await conn.close()
    d = fleet.start(pg_config(dsn, schema))

    async def paused() -> dict[str, Any] | None:
        status = await sync_status(d)
        return status if status["postgres"]["paused_reason"] else None

    status = await wait_for(paused, what="the replicator to pause")
    assert status["postgres"]["reachable"] is False
    assert "version 99" in status["postgres"]["paused_reason"]

    async with d.client() as c:
        item = await c.call("create_work_item", item_type="task", title="written while paused")
        assert item["success"] is True
        assert item["sync"] == "queued"
        assert any(w.startswith("sync_paused") for w in item["warnings"])
        read = await c.call("query_work_item", id=item["id"])
        assert read["title"] == "written while paused"
        assert any(w.startswith("sync_paused") for w in read["warnings"])
    assert (await sync_status(d))["pending_outbox"] >= 1
    rows = await hub_connect(dsn)
    try:
        assert await count(rows, f"SELECT count(*) FROM {schema}.entities WHERE id = $1", item["id"]) == 0
    finally:
        await rows.close()


# --- apply_op verdicts -------------------------------------------------------------------------


async def test_create_is_applied_once_and_recorded(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    o = create_op(ident, item_type="task", title="first", status="active")
    result = await apply(conn, schema, o)
    assert result["verdict"] == "applied"
    assert result["version"] == 1
    version, data = await entity_row(conn, schema, ident)
    assert version == 1
    assert data["title"] == "first" and data["created_by"] == "tester"
    assert await count(conn, f"SELECT count(*) FROM {schema}.changes WHERE entity_id = $1", ident) == 1
    assert await count(conn, f"SELECT count(*) FROM {schema}.ops WHERE op_id = $1::uuid", o["op_id"]) == 1


async def test_a_replayed_op_gets_the_same_verdict_and_changes_nothing(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t"))
    upd = op(ident, {"title": ("t", "t2")}, base=1)
    first = await apply(conn, schema, upd)
    assert first["verdict"] == "applied" and first["version"] == 2
    # Another machine moves the entity on; the replay must still answer what the op got then.
    await apply(conn, schema, op(ident, {"priority": (None, "high")}, base=2, machine="m2"))
    again = await apply(conn, schema, upd)
    assert again.pop("replayed") is True
    assert again == first
    # Replaying strictly does not turn a recorded verdict into a rejection either.
    assert (await apply(conn, schema, upd, strict=True))["verdict"] == "applied"
    version, data = await entity_row(conn, schema, ident)
    assert version == 3 and data["title"] == "t2" and data["priority"] == "high"
    assert await count(conn, f"SELECT count(*) FROM {schema}.changes WHERE op_id = $1::uuid", upd["op_id"]) == 1


async def test_strict_op_at_an_old_version_is_rejected_and_not_recorded(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t", priority="medium"))
    await apply(conn, schema, op(ident, {"title": ("t", "theirs")}, base=1, machine="m2"))
    mine = op(ident, {"priority": ("medium", "high")}, base=1)  # disjoint, but strict means "at my version"
    result = await apply(conn, schema, mine, strict=True)
    assert result["verdict"] == "rejected"
    assert result["version"] == 2 and result["data"]["title"] == "theirs" and result["updated_by"] == "tester"
    assert await count(conn, f"SELECT count(*) FROM {schema}.ops WHERE op_id = $1::uuid", mine["op_id"]) == 0
    assert (await entity_row(conn, schema, ident))[0] == 2
    # Not recorded, so the same op pushed later as a queued write is judged afresh (and merges).
    assert (await apply(conn, schema, mine))["verdict"] == "merged"


async def test_strict_op_whose_read_fields_changed_is_rejected(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t"))
    before = (await entity_row(conn, schema, ident))[1]
    # The op claims base version 1 but its old value disagrees with the hub's: strict refuses it.
    result = await apply(conn, schema, op(ident, {"title": ("something else", "x")}, base=1), strict=True)
    assert result["verdict"] == "rejected"
    assert await entity_row(conn, schema, ident) == (1, {**before, "title": "t"})


async def test_disjoint_fields_merge(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t", priority="medium"))
    theirs = await apply(conn, schema, op(ident, {"title": ("t", "remote")}, base=1, machine="m2"))
    assert theirs["verdict"] == "applied"
    result = await apply(conn, schema, op(ident, {"priority": ("medium", "high")}, base=1))
    assert result["verdict"] == "merged"
    assert result["version"] == 3 and result["conflicts"] == {}
    version, data = await entity_row(conn, schema, ident)
    assert version == 3 and data["title"] == "remote" and data["priority"] == "high"
    via = await conn.fetchval(f"SELECT via FROM {schema}.changes WHERE entity_id = $1 AND version = 3", ident)
    assert via == "merge"


async def test_the_same_change_on_both_sides_agrees(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t"))
    await apply(conn, schema, op(ident, {"title": ("t", "same")}, base=1, machine="m2"))
    result = await apply(conn, schema, op(ident, {"title": ("t", "same")}, base=1))
    assert result["verdict"] == "merged" and result["conflicts"] == {}
    assert (await entity_row(conn, schema, ident))[0] == 2  # nothing new, no version bump


async def test_same_field_changed_differently_is_a_conflict(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t", priority="medium"))
    await apply(conn, schema, op(ident, {"title": ("t", "remote")}, base=1, machine="m2"))
    mine = op(ident, {"title": ("t", "local"), "priority": ("medium", "low")}, base=1)
    result = await apply(conn, schema, mine)
    assert result["verdict"] == "conflict"
    assert result["conflicts"] == {"title": {"base": "t", "local": "local", "remote": "remote"}}
    version, data = await entity_row(conn, schema, ident)
    assert data["title"] == "remote"  # the hub is the arbiter
    assert data["priority"] == "low" and version == 3  # the undisputed field still merged
    assert (await apply(conn, schema, mine))["conflicts"] == result["conflicts"]  # replay: same verdict
    assert (await entity_row(conn, schema, ident))[0] == 3


async def test_a_strict_same_field_clash_is_rejected_not_a_conflict(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t"))
    await apply(conn, schema, op(ident, {"title": ("t", "remote")}, base=1, machine="m2"))
    result = await apply(conn, schema, op(ident, {"title": ("t", "local")}, base=2), strict=True)
    assert result["verdict"] == "rejected"
    assert (await entity_row(conn, schema, ident))[1]["title"] == "remote"


async def test_duplicate_vendor_name_is_case_insensitive(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    meta = {"extractor_version": "0.0.0"}
    created = await apply(conn, schema, create_op(first, "vendor", name="Acme", status="broken", metadata=meta))
    assert created["verdict"] == "applied"
    dup = create_op(second, "vendor", name="ACME", status="operational", metadata=meta)
    result = await apply(conn, schema, dup)
    assert result["verdict"] == "duplicate"
    assert result["entity_id"] == first and result["data"]["name"] == "Acme" and result["version"] == 1
    assert await count(conn, f"SELECT count(*) FROM {schema}.entities WHERE entity = 'vendor'") == 1
    again = await apply(conn, schema, dup)
    assert again.pop("replayed") is True and again == result
    # A work item may of course carry any title; only live vendors are unique by name.
    other = create_op(str(uuid.uuid4()), item_type="task", title="Acme")
    assert (await apply(conn, schema, other))["verdict"] == "applied"


async def test_vendor_name_of_a_deleted_vendor_is_free(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await apply(conn, schema, create_op(first, "vendor", name="Gone", status="broken"))
    d = op(first, {"deleted_at": (None, "2026-01-02T00:00:00Z")}, base=1, entity="vendor")
    assert (await apply(conn, schema, d))["verdict"] == "applied"
    again = await apply(conn, schema, create_op(second, "vendor", name="gone", status="broken"))
    assert again["verdict"] == "applied"


async def test_update_of_an_unknown_entity_is_missing_and_not_recorded(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    upd = op(ident, {"title": ("a", "b")}, base=3)
    assert await apply(conn, schema, upd) == {"verdict": "missing", "entity_id": ident}
    assert await count(conn, f"SELECT count(*) FROM {schema}.ops WHERE op_id = $1::uuid", upd["op_id"]) == 0
    # Once the full state has been sent, the same op applies normally.
    await apply(conn, schema, create_op(ident, item_type="task", title="a"))
    assert (await apply(conn, schema, upd))["verdict"] == "merged"
    assert (await entity_row(conn, schema, ident))[1]["title"] == "b"


async def test_apply_ops_keeps_order_and_per_op_strictness(hub: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    ops = [
        create_op(ident, item_type="task", title="t"),
        op(ident, {"title": ("t", "a")}, base=1),
        {**op(ident, {"title": ("t", "b")}, base=1), "strict": True},  # stale and strict: rejected
        op(ident, {"priority": (None, "low")}, base=1),  # stale but queued: merged
    ]
    raw = await conn.fetchval(f"SELECT {schema}.apply_ops($1::jsonb, false)::text", json.dumps(ops))
    verdicts = [v["verdict"] for v in json.loads(raw)]
    assert verdicts == ["applied", "applied", "rejected", "merged"]
    version, data = await entity_row(conn, schema, ident)
    assert version == 3 and data["title"] == "a" and data["priority"] == "low"


async def test_changes_notify_the_channel(hub: tuple[asyncpg.Connection, str], pg_schema: tuple[str, str]) -> None:
    conn, schema = hub
    listener = await hub_connect(pg_schema[0])
    heard = asyncio.Event()
    try:
        await listener.add_listener(hub_schema.channel(schema), lambda *_: heard.set())
        await apply(conn, schema, create_op(str(uuid.uuid4()), item_type="task", title="t"))
        async with asyncio.timeout(10):
            await heard.wait()
    finally:
        await listener.close()


async def test_offline_moves_that_would_close_a_parent_cycle_become_a_conflict(
    hub: tuple[asyncpg.Connection, str],
) -> None:
    conn, schema = hub
    x, y, z = (str(uuid.uuid4()) for _ in range(3))
    for ident, title in ((x, "X"), (y, "Y"), (z, "Z")):
        assert (await apply(conn, schema, create_op(ident, title=title)))["verdict"] == "applied"
    # Machine 1 moved Z under Y and Y under X; machine 2, offline, moved X under Z.
    assert (await apply(conn, schema, op(z, {"parent_id": (None, y)}, base=1)))["verdict"] == "applied"
    assert (await apply(conn, schema, op(y, {"parent_id": (None, x)}, base=1)))["verdict"] == "applied"
    moved = await apply(conn, schema, op(x, {"parent_id": (None, z), "priority": (None, "high")}, base=1, machine="m2"))
    assert moved["verdict"] == "conflict"
    assert moved["conflicts"] == {"parent_id": {"base": None, "local": z, "remote": None}}
    assert moved["data"].get("parent_id") is None and moved["data"]["priority"] == "high"
    hub_row = await conn.fetchrow(f"SELECT version, data::text FROM {schema}.entities WHERE id = $1", x)
    assert hub_row["version"] == 2 and json.loads(hub_row["data"]).get("parent_id") is None
    # A strict (confirmed) move that would close the cycle is refused outright, saying why.
    rejected = await apply(conn, schema, op(x, {"parent_id": (None, y)}, base=2), strict=True)
    assert rejected["verdict"] == "cycle" and "would close a cycle" in rejected["reason"]
