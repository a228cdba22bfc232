"""R4 on one daemon: concurrent writers and claimants over separate socket connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from statusd.client import StatusdClient, StatusdError, ValidationError, VersionMismatchError

N_CLIENTS = 20


@asynccontextmanager
async def clients(daemon: Any, n: int = N_CLIENTS) -> AsyncIterator[list[StatusdClient]]:
    """``n`` clients, each on its own connection, each declaring its own name (agent-0, agent-1, …)."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(daemon.client(f"agent-{i}")) for i in range(n)]


async def test_twenty_updates_at_the_same_version_exactly_one_wins(daemon):
    async with clients(daemon) as cs:
        item = await cs[0].call("create_work_item", item_type="task", title="contended")

        results = await asyncio.gather(
            *(c.call("update_work_item", id=item["id"], version=1, title=f"by agent-{i}") for i, c in enumerate(cs)),
            return_exceptions=True,
        )

        winners = [(i, r) for i, r in enumerate(results) if isinstance(r, dict)]
        losers = [r for r in results if not isinstance(r, dict)]
        assert len(winners) == 1, results
        assert len(losers) == N_CLIENTS - 1
        for loser in losers:
            assert isinstance(loser, VersionMismatchError), repr(loser)
            assert (loser.expected_version, loser.actual_version) == (1, 2)
        winner_index, winner = winners[0]
        assert winner["version"] == 2
        final = await cs[0].call("query_work_item", id=item["id"])
        assert final["version"] == 2
        assert final["title"] == f"by agent-{winner_index}"
        assert final["updated_by"] == f"agent-{winner_index}"
        history = await cs[0].call("query_history", id=item["id"])
        assert [v["version"] for v in history["versions"]] == [2, 1]


async def test_twenty_claims_of_one_item_have_one_claimant(daemon):
    async with clients(daemon) as cs:
        item = await cs[0].call("create_work_item", item_type="task", title="one prize")

        results = await asyncio.gather(*(c.call("claim_work_item", id=item["id"]) for c in cs), return_exceptions=True)

        claimed = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if not isinstance(r, dict)]
        assert len(claimed) == 1, results
        winner = claimed[0]["claimed_by"]
        assert claimed[0]["claimed"] is True and claimed[0]["id"] == item["id"]
        assert len(refused) == N_CLIENTS - 1
        for err in refused:
            # A structured tool error, not a transport failure: code, message, details naming the field.
            assert isinstance(err, ValidationError), repr(err)
            assert isinstance(err, StatusdError) and err.code == "validation_error"
            assert f"already claimed by {winner}" in err.message
            assert err.details["fields"][0]["field"] == "id"
        final = await cs[0].call("query_work_item", id=item["id"])
        assert final["claimed_by"] == winner and final["version"] == 2


async def test_twenty_claims_of_any_ready_item_share_a_pool_of_five(daemon):
    async with clients(daemon) as cs:
        pool = {(await cs[0].call("create_work_item", item_type="task", title=f"ready {i}"))["id"] for i in range(5)}
        blocked = await cs[0].call("create_work_item", item_type="task", title="waits for the pool")
        for ident in pool:
            await cs[0].call("add_dependency", work_item_id=blocked["id"], depends_on_id=ident)

        results = await asyncio.gather(*(c.call("claim_work_item") for c in cs))

        got = [r for r in results if r["claimed"]]
        empty = [r for r in results if not r["claimed"]]
        assert len(got) == 5
        assert {r["id"] for r in got} == pool  # five distinct items, all from the ready pool
        assert len({r["claimed_by"] for r in got}) == 5
        assert len(empty) == N_CLIENTS - 5
        for r in empty:
            assert r["success"] is True and r["item"] is None
            assert any(w.startswith("nothing_ready") for w in r["warnings"])
        listed = await cs[0].call("list_work_items", ready=True)
        assert listed["total_count"] == 0
