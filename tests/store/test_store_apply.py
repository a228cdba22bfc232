"""store/apply.py directly: what the hub's changes do to a replicated store, without a hub."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from store_support import create_item, ctx, get_item, update_item

from statusd.store import Store, apply, outbox


@pytest.fixture
async def replicated(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "replica.sqlite3", machine="here", replicated=True) as s:
        yield s


def pulled(item: dict[str, Any], *, version: int, title: str, op_id: str | None = None) -> dict[str, Any]:
    """A change as ``Replicator._pull`` hands it over: another machine retitled ``item``."""
    data = {**item, "title": title, "version": version}
    return {
        "entity": "work_item",
        "entity_id": item["id"],
        "version": version,
        "data": data,
        "changes": {"title": {"old": item["title"], "new": title}},
        "op_id": op_id or str(uuid.uuid4()),
        "actor": "someone-else",
        "at": "2026-11-30T12:00:00.000000Z",
        "machine": "there",
        "via": "tool",
    }


def history_rows(store: Store, ident: str) -> list[tuple[Any, ...]]:
    return store.read(
        lambda conn: conn.execute(
            "SELECT version, actor, machine, via FROM history WHERE entity_id = ? ORDER BY seq", (ident,)
        ).fetchall()
    )


def pull(store: Store, changes: list[dict[str, Any]], cursor: str) -> int:
    return store.write_sync(apply.apply_pulled, ctx("statusd-sync", via="sync"), changes, cursor)


def settle_everything(store: Store) -> None:
    """As if the hub accepted every queued op: the outbox empties."""
    store.write_sync(lambda conn, _ctx: conn.execute("DELETE FROM outbox"), ctx())


async def test_pending_ops_carry_actor_and_via_in_outbox_order(replicated: Store) -> None:
    first = await create_item(replicated, actor="alice", title="one")
    await update_item(replicated, first["id"], actor="bob", title="one, again")
    # The configuration singleton made at open is queued first.
    assert replicated.read(outbox.pending_ops, 10)[0]["entity"] == "configuration"
    ops = [o for o in replicated.read(outbox.pending_ops, 10) if o["entity_id"] == first["id"]]
    assert [(o["entity_id"], o["base_version"], o["new_version"], o["actor"], o["via"]) for o in ops] == [
        (first["id"], 0, 1, "alice", "tool"),
        (first["id"], 1, 2, "bob", "tool"),
    ]
    assert ops[1]["changes"]["title"] == {"old": "one", "new": "one, again"}
    assert len(replicated.read(outbox.pending_ops, 2)) == 2  # the limit holds


async def test_a_pulled_change_is_applied_recorded_and_moves_the_cursor(replicated: Store) -> None:
    item = await create_item(replicated, title="mine")
    settle_everything(replicated)
    assert pull(replicated, [pulled(item, version=2, title="theirs")], "7:1") == 1
    row = get_item(replicated, item["id"])
    assert (row["title"], row["version"], row["updated_by"]) == ("theirs", 2, "someone-else")
    assert history_rows(replicated, item["id"])[-1] == (2, "someone-else", "there", "sync")
    assert replicated.meta("pull_cursor") == "7:1"
    assert replicated.read(outbox.pending_ops, 10) == []  # a pulled change is never pushed back


async def test_local_pending_changes_stay_on_top(replicated: Store) -> None:
    item = await create_item(replicated, title="mine, not yet pushed")
    assert pull(replicated, [pulled(item, version=2, title="theirs")], "8:1") == 0
    assert get_item(replicated, item["id"])["title"] == "mine, not yet pushed"
    assert replicated.meta("pull_cursor") == "8:1"  # the batch is consumed all the same
    assert replicated.read(apply.has_pending, item["id"]) is True


async def test_an_older_version_never_overwrites_a_newer_row(replicated: Store) -> None:
    item = await create_item(replicated, title="v1")
    await update_item(replicated, item["id"], title="v2")
    settle_everything(replicated)
    assert pull(replicated, [pulled(item, version=1, title="stale")], "9:1") == 0
    assert get_item(replicated, item["id"])["title"] == "v2"


async def test_our_own_change_coming_back_is_not_recorded_twice(replicated: Store) -> None:
    item = await create_item(replicated, title="mine")
    [op] = [o for o in replicated.read(outbox.pending_ops, 10) if o["entity_id"] == item["id"]]
    settle_everything(replicated)
    echo = pulled(item, version=1, title="mine", op_id=op["op_id"])
    before = history_rows(replicated, item["id"])
    pull(replicated, [echo], "10:1")
    assert history_rows(replicated, item["id"]) == before


async def test_changes_of_an_unknown_entity_kind_are_skipped(replicated: Store) -> None:
    item = await create_item(replicated)
    settle_everything(replicated)
    alien = {**pulled(item, version=2, title="x"), "entity": "spaceship", "entity_id": str(uuid.uuid4())}
    assert pull(replicated, [alien], "11:1") == 0
    assert replicated.meta("pull_cursor") == "11:1"


def test_meta_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite3", replicated=True)
    store.open()
    try:
        assert store.read(outbox.get_meta, "nothing") is None
        store.write_sync(lambda conn, _ctx: outbox.set_meta(conn, "k", "v1"), ctx())
        store.write_sync(lambda conn, _ctx: outbox.set_meta(conn, "k", "v2"), ctx())
        assert store.read(outbox.get_meta, "k") == "v2"
    finally:
        store.close()
