"""claim_work_item (SPEC §2.1, §4.1): explicit and automatic claims, leases, completion."""

from __future__ import annotations

import asyncio
import json

import pytest
from store_support import FakeClock, add_edge, claim, create_item, get_item, list_items, query_item, update_item

from statusd import models as m
from statusd.errors import ValidationError
from statusd.store import Store, WriteContext, report


async def test_claim_by_id_sets_claimant_and_lease(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    claimed = await claim(cstore, actor="alice", id=item["id"][:8])
    assert claimed is not None
    assert claimed["id"] == item["id"]
    assert claimed["claimed_by"] == "alice"
    assert claimed["claim_expires_at"] == clock.advance(minutes=30)
    assert claimed["version"] == 2
    row = get_item(cstore, item["id"])
    assert (row["claimed_by"], row["claim_expires_at"]) == ("alice", claimed["claim_expires_at"])


async def test_lease_minutes_sets_the_expiry(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    claimed = await claim(cstore, id=item["id"], lease_minutes=90)
    assert claimed is not None
    assert claimed["claim_expires_at"] == clock.advance(minutes=90)


async def test_omitted_id_claims_the_highest_priority_ready_item(cstore: Store, clock: FakeClock) -> None:
    low = await create_item(cstore, priority="low")
    clock.advance(seconds=1)
    high_waiting = await create_item(cstore, priority="critical")
    clock.advance(seconds=1)
    high_first = await create_item(cstore, priority="high")
    clock.advance(seconds=1)
    await create_item(cstore, priority="high")
    await add_edge(cstore, high_waiting["id"], low["id"])  # the critical one is not ready
    first = await claim(cstore, actor="w1")
    assert first is not None
    assert first["id"] == high_first["id"], "highest priority, oldest first"
    second = await claim(cstore, actor="w2")
    assert second is not None
    assert second["priority"] == "high"
    assert second["id"] != high_first["id"]
    third = await claim(cstore, actor="w3")
    assert third is not None
    assert third["id"] == low["id"]
    assert await claim(cstore, actor="w4") is None, "the critical item still waits for the claimed low one"


async def test_omitted_id_can_filter_by_item_type(store: Store) -> None:
    await create_item(store, item_type="task", priority="critical")
    research = await create_item(store, item_type="research", priority="low")
    claimed = await claim(store, item_type="research")
    assert claimed is not None
    assert claimed["id"] == research["id"]
    assert await claim(store, item_type="research") is None
    assert await claim(store, item_type="session") is None


async def test_nothing_ready_returns_none_and_writes_nothing(store: Store) -> None:
    assert await claim(store) is None
    item = await create_item(store, status="blocked")
    assert await claim(store) is None
    assert get_item(store, item["id"])["version"] == 1


async def test_a_claimed_item_cannot_be_claimed_by_another_until_the_lease_expires(
    cstore: Store, clock: FakeClock
) -> None:
    item = await create_item(cstore)
    await claim(cstore, actor="alice", id=item["id"])
    with pytest.raises(ValidationError) as exc:
        await claim(cstore, actor="bob", id=item["id"])
    assert exc.value.fields[0]["field"] == "id"
    assert exc.value.fields[0]["id"] == item["id"]
    assert "already claimed by alice" in exc.value.message
    assert await claim(cstore, actor="bob") is None

    clock.advance(minutes=29, seconds=59)
    with pytest.raises(ValidationError):
        await claim(cstore, actor="bob", id=item["id"])
    clock.advance(seconds=1)
    # Expired: shown as unclaimed, and claimable again.
    assert query_item(cstore, item["id"])["claimed_by"] is None
    assert "claimed_by" not in list_items(cstore)["items"][0]
    taken = await claim(cstore, actor="bob")
    assert taken is not None
    assert taken["claimed_by"] == "bob"


async def test_the_claimant_can_renew_its_own_live_claim(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    await claim(cstore, actor="alice", id=item["id"])
    clock.advance(minutes=20)
    renewed = await claim(cstore, actor="alice", id=item["id"])
    assert renewed is not None
    assert renewed["claim_expires_at"] == clock.advance(minutes=30)


async def test_completion_clears_the_claim(store: Store) -> None:
    item = await create_item(store)
    await claim(store, actor="alice", id=item["id"])
    done = await update_item(store, item["id"], status="completed")
    assert (done["claimed_by"], done["claim_expires_at"]) == (None, None)
    row = get_item(store, item["id"])
    assert (row["claimed_by"], row["claim_expires_at"]) == (None, None)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("blocked", "item is blocked, not active"),
        ("completed", "item is completed, not active"),
        ("deleted", "item is deleted"),
        ("waiting", "waiting for unfinished item(s)"),
        ("waiting_blocks", "waiting for unfinished item(s)"),
    ],
)
async def test_claiming_a_not_ready_item_names_the_id_and_the_reason(store: Store, setup: str, reason: str) -> None:
    item = await create_item(store)
    other = await create_item(store, title="prerequisite")
    if setup in ("blocked", "completed"):
        await update_item(store, item["id"], status=setup)
    elif setup == "deleted":
        await update_item(store, item["id"], deleted=True)
    elif setup == "waiting":
        await add_edge(store, item["id"], other["id"])
    else:
        await add_edge(store, other["id"], item["id"], "blocks")
    version = get_item(store, item["id"])["version"]
    with pytest.raises(ValidationError) as exc:
        await claim(store, id=item["id"])
    assert exc.value.code == "validation_error"
    assert exc.value.fields[0]["field"] == "id"
    assert exc.value.fields[0]["id"] == item["id"]
    assert reason in exc.value.fields[0]["message"]
    if setup.startswith("waiting"):
        assert other["id"][:8] in exc.value.message
    assert get_item(store, item["id"])["version"] == version


async def test_claiming_an_archived_item_is_rejected(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    clock.advance(days=400)
    await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
    with pytest.raises(ValidationError) as exc:
        await claim(cstore, id=item["id"])
    assert "archived" in exc.value.message


@pytest.mark.parametrize("change", ["deleted", "blocked", "waiting"])
async def test_renewing_an_own_claim_on_an_item_that_is_no_longer_ready_is_rejected(store: Store, change: str) -> None:
    """Regression: the claimant's own live claim let it re-claim a deleted, blocked or waiting item."""
    item = await create_item(store)
    other = await create_item(store)
    await claim(store, actor="alice", id=item["id"])
    if change == "deleted":
        await update_item(store, item["id"], deleted=True)
    elif change == "blocked":
        await update_item(store, item["id"], status="blocked")
    else:
        await add_edge(store, item["id"], other["id"])
    version = get_item(store, item["id"])["version"]
    with pytest.raises(ValidationError) as exc:
        await claim(store, actor="alice", id=item["id"])
    assert exc.value.fields[0]["field"] == "id"
    assert get_item(store, item["id"])["version"] == version


async def test_exactly_one_concurrent_claimant_wins(store: Store) -> None:
    item = await create_item(store)
    results = await asyncio.gather(
        *(claim(store, actor=f"w{i}", id=item["id"]) for i in range(5)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, ValidationError)]
    assert len(winners) == 1
    assert len(losers) == 4
    assert get_item(store, item["id"])["claimed_by"] == winners[0]["claimed_by"]


async def test_concurrent_automatic_claims_take_different_items(store: Store) -> None:
    for _ in range(3):
        await create_item(store)
    results = await asyncio.gather(*(claim(store, actor=f"w{i}") for i in range(4)))
    claimed = [r["id"] for r in results if r is not None]
    assert len(claimed) == 3
    assert len(set(claimed)) == 3
    assert results.count(None) == 1


async def test_claim_history_records_the_claimant(store: Store) -> None:
    item = await create_item(store)
    await claim(store, actor="alice", id=item["id"])
    row = store.reader.execute(
        "SELECT actor, changes FROM history WHERE entity_id = ? ORDER BY seq DESC LIMIT 1", (item["id"],)
    ).fetchone()
    assert row[0] == "alice"
    assert json.loads(row[1])["claimed_by"] == {"old": None, "new": "alice"}


def test_claim_args_bound_the_lease() -> None:
    for bad in (0, 24 * 60 + 1):
        with pytest.raises(ValidationError) as exc:
            m.parse_args(m.ClaimWorkItemArgs, {"lease_minutes": bad})
        assert exc.value.fields[0]["field"] == "lease_minutes"
