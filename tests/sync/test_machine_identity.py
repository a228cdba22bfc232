"""Issue 6 item 7: two replicated daemons on one host are told apart in history and on the hub.

Before, both recorded ``socket.gethostname()``, so a change's origin could not be told from the other
daemon's, locally or in the hub's ``changes``/``entities``/``ops`` rows.
"""

from __future__ import annotations

import socket

from sync_support import Fleet, hub_fetch, pg_config, store_scalar, wait_for, wait_online


async def test_two_daemons_on_one_host_record_different_machine_ids(fleet: Fleet, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    a, b = fleet.start(pg_config(dsn, schema)), fleet.start(pg_config(dsn, schema))
    for d in (a, b):
        await wait_online(d)
    ids = [store_scalar(d.store_path, "SELECT value FROM meta WHERE key = 'machine_id'") for d in (a, b)]
    assert ids[0] != ids[1] and socket.gethostname() not in ids, ids

    async with a.client("alice") as c:
        item = await c.call("create_work_item", item_type="task", title="made on A")

    async def arrived_on_b() -> bool:
        return bool(store_scalar(b.store_path, "SELECT COUNT(*) FROM work_items WHERE id = ?", item["id"]))

    await wait_for(arrived_on_b, what="A's item on B")
    async with b.client("bob") as c:
        await c.call("update_work_item", id=item["id"], version=item["version"], title="changed on B")
        versions = (await c.call("query_history", id=item["id"]))["versions"]
    assert [(v["by"], v["machine"]) for v in versions] == [("bob", ids[1]), ("alice", ids[0])]

    hub_changes = await hub_fetch(dsn, f"SELECT actor, machine FROM {schema}.changes WHERE entity_id = $1", item["id"])
    assert sorted(tuple(r) for r in hub_changes) == [("alice", ids[0]), ("bob", ids[1])]
    [entity] = await hub_fetch(dsn, f"SELECT machine FROM {schema}.entities WHERE id = $1", item["id"])
    assert entity["machine"] == ids[1]

    # Stable across restarts: the id lives in the store.
    assert a.stop() == 0
    a.start()
    await wait_online(a)
    async with a.client("alice") as c:
        await c.call("update_work_item", id=item["id"], version=2, title="changed on A again")
        latest = (await c.call("query_history", id=item["id"], limit=1))["versions"][0]
    assert latest["machine"] == ids[0]
