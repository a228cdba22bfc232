"""Claiming the next ready item across machines (SPEC §5.3, issue 6.5): real daemons, one hub."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from sync_support import Fleet, hub_entities, pg_config, store_scalar, wait_converged, wait_for, wait_online

ITEMS = 12
PER_DAEMON = 3


async def test_claimants_without_an_id_on_three_daemons_each_win_a_distinct_item(
    fleet: Fleet, pg_schema: tuple[str, str]
) -> None:
    """Regression: only one claimant per daemon won each round; the others got ``version_mismatch``
    for an item they never named. The loser of a cross-machine race now takes the next ready item."""
    dsn, schema = pg_schema
    daemons = [fleet.start(pg_config(dsn, schema)) for _ in range(3)]
    for d in daemons:
        await wait_online(d)
    async with daemons[0].client() as c:
        for n in range(ITEMS):
            await c.call("create_work_item", item_type="task", title=f"ready {n}")
    for d in daemons:
        await wait_for(
            lambda d=d: store_scalar(d.store_path, "SELECT COUNT(*) FROM work_items") == ITEMS,
            what=f"{d.root.name} to have every item",
        )
    async with AsyncExitStack() as stack:
        claimants = [
            (f"agent-{i}-{k}", await stack.enter_async_context(d.client(f"agent-{i}-{k}")))
            for i, d in enumerate(daemons)
            for k in range(PER_DAEMON)
        ]
        results = await asyncio.gather(*(c.call("claim_work_item", actor=name) for name, c in claimants))
    assert all(r["claimed"] and r["sync"] == "confirmed" for r in results), results
    won = {r["id"]: r["claimed_by"] for r in results}
    assert len(won) == len(claimants), "two claimants were given the same item"
    assert sorted(won.values()) == sorted(name for name, _ in claimants)
    hub = await hub_entities(dsn, schema)
    assert {ident: hub[ident]["fields"]["claimed_by"] for ident in won} == won
    await wait_converged([d.store_path for d in daemons], dsn, schema)
