"""Hub schema v2 at the function level: per-key metadata merge and dependency cycles (SPEC §5.4)."""

from __future__ import annotations

import json
import uuid

import asyncpg
from hub_support import apply, create_op, entity_row, op
from sync_support import hub_connect

from statusd.sync import pg_schema as hub_schema

Hub = tuple[asyncpg.Connection, str]


async def test_different_metadata_keys_added_on_two_machines_merge(hub: Hub) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t", metadata={"shared": 1}))
    theirs = op(ident, {"metadata": ({"shared": 1}, {"shared": 1, "from_b": "b"})}, base=1, machine="m2")
    assert (await apply(conn, schema, theirs))["verdict"] == "applied"
    mine = op(ident, {"metadata": ({"shared": 1}, {"shared": 1, "from_a": "a"})}, base=1)
    result = await apply(conn, schema, mine)
    assert result["verdict"] == "merged" and result["conflicts"] == {}
    version, data = await entity_row(conn, schema, ident)
    assert version == 3
    assert data["metadata"] == {"shared": 1, "from_a": "a", "from_b": "b"}
    # The change record holds the whole metadata before and after, as history shows it.
    changes = await conn.fetchval(f"SELECT changes::text FROM {schema}.changes WHERE op_id = $1::uuid", mine["op_id"])
    assert json.loads(changes)["metadata"] == {
        "old": {"shared": 1, "from_b": "b"},
        "new": {"shared": 1, "from_a": "a", "from_b": "b"},
    }


async def test_the_same_metadata_key_changed_differently_is_a_conflict_for_that_key_only(hub: Hub) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    base = {"blocked_reason": "waiting", "estimated_hours": 3}
    await apply(conn, schema, create_op(ident, item_type="task", title="t", metadata=base))
    theirs = {**base, "blocked_reason": "remote reason"}
    await apply(conn, schema, op(ident, {"metadata": (base, theirs)}, base=1, machine="m2"))
    mine = {"blocked_reason": "local reason", "estimated_hours": 5, "actual_hours": 1}
    result = await apply(conn, schema, op(ident, {"metadata": (base, mine)}, base=1))
    assert result["verdict"] == "conflict"
    assert result["conflicts"] == {
        "metadata.blocked_reason": {"base": "waiting", "local": "local reason", "remote": "remote reason"}
    }
    data = (await entity_row(conn, schema, ident))[1]
    # The disputed key keeps the hub's value; the undisputed keys merged.
    assert data["metadata"] == {"blocked_reason": "remote reason", "estimated_hours": 5, "actual_hours": 1}


async def test_a_metadata_key_removed_on_one_side_merges_with_an_addition_on_the_other(hub: Hub) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, "vendor", name="Meta", status="broken", metadata={"a": 1, "b": 2}))
    await apply(conn, schema, op(ident, {"metadata": ({"a": 1, "b": 2}, {"a": 1})}, base=1, entity="vendor"))
    mine = op(ident, {"metadata": ({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3})}, base=1, entity="vendor", machine="m2")
    assert (await apply(conn, schema, mine))["verdict"] == "merged"
    assert (await entity_row(conn, schema, ident))[1]["metadata"] == {"a": 1, "c": 3}


async def test_the_same_metadata_change_on_both_sides_agrees(hub: Hub) -> None:
    conn, schema = hub
    ident = str(uuid.uuid4())
    await apply(conn, schema, create_op(ident, item_type="task", title="t", metadata={}))
    await apply(conn, schema, op(ident, {"metadata": ({}, {"k": "v"})}, base=1, machine="m2"))
    result = await apply(conn, schema, op(ident, {"metadata": ({}, {"k": "v"})}, base=1))
    assert result["verdict"] == "merged" and result["conflicts"] == {}
    assert (await entity_row(conn, schema, ident))[0] == 2  # nothing new, no version bump


def edge(a: str, b: str, kind: str = "depends_on") -> dict[str, object]:
    return create_op(str(uuid.uuid4()), "dependency", work_item_id=a, depends_on_id=b, dependency_type=kind)


async def test_an_edge_closing_a_cycle_arrives_deleted_with_a_conflict(hub: Hub) -> None:
    conn, schema = hub
    x, y, z = (str(uuid.uuid4()) for _ in range(3))
    for ident in (x, y, z):
        await apply(conn, schema, create_op(ident, item_type="task", title=ident[:4]))
    # Machine 1: X waits for Y, Y waits for Z. Machine 2, offline: Z waits for X ("X blocks Z" is the same).
    assert (await apply(conn, schema, edge(x, y)))["verdict"] == "applied"
    assert (await apply(conn, schema, edge(y, z)))["verdict"] == "applied"
    closing = edge(x, z, "blocks")
    result = await apply(conn, schema, closing)
    assert result["verdict"] == "conflict"
    assert "would close a cycle" in result["reason"]
    assert result["conflicts"] == {"deleted_at": {"base": None, "local": None, "remote": closing["at"]}}
    version, data = await entity_row(conn, schema, closing["entity_id"])
    assert version == 1 and data["deleted_at"] == closing["at"]  # on the hub, but not live
    # A confirmed (strict) edge that would close a cycle is refused and leaves nothing behind.
    strict = edge(z, x)
    refused = await apply(conn, schema, strict, strict=True)
    assert refused["verdict"] == "cycle" and "would close a cycle" in refused["reason"]
    assert await conn.fetchval(f"SELECT count(*) FROM {schema}.entities WHERE id = $1", strict["entity_id"]) == 0
    # An unrelated edge still goes in, and a self-edge is a cycle too.
    assert (await apply(conn, schema, edge(z, str(uuid.uuid4()))))["verdict"] == "applied"
    assert (await apply(conn, schema, edge(x, x)))["verdict"] == "conflict"


async def test_an_edge_undeleted_into_a_cycle_stays_deleted(hub: Hub) -> None:
    conn, schema = hub
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    for ident in (x, y):
        await apply(conn, schema, create_op(ident, item_type="task", title=ident[:4]))
    back = edge(y, x)
    await apply(conn, schema, back)
    gone = "2026-01-02T00:00:00Z"
    await apply(conn, schema, op(back["entity_id"], {"deleted_at": (None, gone)}, base=1, entity="dependency"))
    await apply(conn, schema, edge(x, y))  # live now that Y no longer waits for X
    revive = op(back["entity_id"], {"deleted_at": (gone, None), "dependency_type": ("depends_on", "depends_on")},
                base=2, entity="dependency", machine="m2")  # fmt: skip
    result = await apply(conn, schema, revive)
    assert result["verdict"] == "conflict"
    assert result["conflicts"] == {"deleted_at": {"base": gone, "local": None, "remote": gone}}
    assert (await entity_row(conn, schema, back["entity_id"]))[1]["deleted_at"] == gone


async def test_upgrading_a_version_1_hub_keeps_its_data(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    conn = await hub_connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(f"CREATE TABLE {schema}.schema_version (version integer PRIMARY KEY, name text NOT NULL,"
                               " applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
            await conn.execute(hub_schema.MIGRATIONS[0][1](schema))
            await conn.execute(f"INSERT INTO {schema}.schema_version(version, name) VALUES (1, '0001_hub')")
        ident = str(uuid.uuid4())
        await apply(conn, schema, create_op(ident, item_type="task", title="from v1", metadata={"a": 1}))
        assert await hub_schema.migrate(conn, schema) == hub_schema.LATEST_VERSION
        assert (await entity_row(conn, schema, ident))[1]["title"] == "from v1"
        await apply(conn, schema, op(ident, {"metadata": ({"a": 1}, {"a": 1, "b": 2})}, base=1, machine="m2"))
        result = await apply(conn, schema, op(ident, {"metadata": ({"a": 1}, {"a": 1, "c": 3})}, base=1))
        assert result["verdict"] == "merged"  # the upgraded function merges key by key
    finally:
        await conn.close()
