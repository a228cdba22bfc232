"""Archiving (SPEC §7): whole long-inactive subtrees leave the default views, and stay readable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from store_support import FakeClock, add_edge, create_item, get_item, list_ids, list_items, query_item, update_item

from statusd import models as m
from statusd.store import Store, WriteContext, report, workitems


async def archive(store: Store, after_days: int = 365) -> dict[str, Any]:
    return await store.write(report.archive, WriteContext(actor="archiver"), after_days)


def archived(store: Store, **filters: Any) -> dict[str, Any]:
    args = m.parse_args(m.QueryArchivedArgs, filters)
    return store.read(workitems.list_items, args, store.clock(), archived=True)


def archived_ids(store: Store, **filters: Any) -> set[str]:
    return {r["id"] for r in archived(store, **filters)["items"]}


def is_archived(store: Store, ident: str) -> bool:
    return get_item(store, ident)["archived_at"] is not None


async def test_a_whole_old_subtree_is_archived(cstore: Store, clock: FakeClock) -> None:
    root = await create_item(cstore, item_type="project", title="old project")
    child = await create_item(cstore, parent_id=root["id"])
    grandchild = await create_item(cstore, parent_id=child["id"])
    clock.advance(days=366)
    result = await archive(cstore)
    assert result["archived"] == 3
    assert result["subtrees"] == 1
    assert result["cutoff"] == m.iso(clock.at - timedelta(days=365))
    for ident in (root["id"], child["id"], grandchild["id"]):
        row = get_item(cstore, ident)
        assert row["archived_at"] == clock()
        assert row["updated_by"] == "archiver"
    assert list_ids(cstore) == set()
    assert archived_ids(cstore) == {root["id"], child["id"], grandchild["id"]}
    again = await archive(cstore)
    assert again["archived"] == 0


async def test_items_exactly_at_the_cutoff_are_kept(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    clock.advance(days=365)
    assert (await archive(cstore))["archived"] == 0
    clock.advance(microseconds=1)
    assert (await archive(cstore))["archived"] == 1
    assert is_archived(cstore, item["id"])


async def test_a_recent_descendant_keeps_its_ancestors(cstore: Store, clock: FakeClock) -> None:
    root = await create_item(cstore, title="root")
    old_branch = await create_item(cstore, parent_id=root["id"], title="old branch")
    old_leaf = await create_item(cstore, parent_id=old_branch["id"], title="old leaf")
    busy_branch = await create_item(cstore, parent_id=root["id"], title="busy branch")
    busy_leaf = await create_item(cstore, parent_id=busy_branch["id"], title="busy leaf")
    old_sibling = await create_item(cstore, parent_id=busy_branch["id"], title="old sibling")
    clock.advance(days=400)
    await update_item(cstore, busy_leaf["id"], status="completed")  # recent activity deep down
    result = await archive(cstore)
    assert result["subtrees"] == 2
    assert archived_ids(cstore) == {old_branch["id"], old_leaf["id"], old_sibling["id"]}
    assert list_ids(cstore) == {root["id"], busy_branch["id"], busy_leaf["id"]}


async def test_an_old_child_of_a_recently_touched_parent_is_archived_alone(cstore: Store, clock: FakeClock) -> None:
    root = await create_item(cstore)
    child = await create_item(cstore, parent_id=root["id"])
    clock.advance(days=400)
    await update_item(cstore, root["id"], title="touched")
    await archive(cstore)
    assert not is_archived(cstore, root["id"])
    assert is_archived(cstore, child["id"]), "the child's own subtree is old: archived under a live parent"
    assert query_item(cstore, root["id"], include_children=True)["children"] == []


async def test_soft_deleted_long_ago_counts_as_inactive(cstore: Store, clock: FakeClock) -> None:
    root = await create_item(cstore)
    gone = await create_item(cstore, parent_id=root["id"])
    clock.advance(days=10)
    await update_item(cstore, gone["id"], deleted=True)
    clock.advance(days=370)
    result = await archive(cstore)
    assert result["archived"] == 2
    assert is_archived(cstore, gone["id"])


async def test_recently_soft_deleted_is_still_recent(cstore: Store, clock: FakeClock) -> None:
    root = await create_item(cstore)
    gone = await create_item(cstore, parent_id=root["id"])
    clock.advance(days=400)
    await update_item(cstore, gone["id"], deleted=True)
    assert (await archive(cstore))["archived"] == 0


async def test_archived_items_leave_the_defaults_and_counts(cstore: Store, clock: FakeClock) -> None:
    old = await create_item(cstore, title="old one", priority="high")
    clock.advance(days=400)
    fresh = await create_item(cstore, title="fresh one", priority="high")
    await archive(cstore)
    assert list_ids(cstore) == {fresh["id"]}
    assert list_ids(cstore, include_deleted=True) == {fresh["id"]}
    assert list_ids(cstore, ready=True) == {fresh["id"]}
    assert list_ids(cstore, text="one") == {fresh["id"]}
    assert list_items(cstore)["total_count"] == 1
    summary = cstore.read(report.full_status, cstore.clock())["active_work_items"]
    assert summary["total_count"] == 1
    assert summary["by_priority"] == {"high": 1}
    assert summary["ready_count"] == 1
    assert summary["archived_count"] == 1
    # Still readable directly, with its history.
    assert query_item(cstore, old["id"])["archived_at"] == clock()
    history = cstore.reader.execute("SELECT COUNT(*) FROM history WHERE entity_id = ?", (old["id"],)).fetchone()
    assert history == (2,)


async def test_query_archived_filters(cstore: Store, clock: FakeClock) -> None:
    a = await create_item(cstore, item_type="task", priority="low", title="alpha")
    b = await create_item(cstore, item_type="research", priority="high", title="beta")
    c = await create_item(cstore, item_type="task", status="completed", title="gamma")
    clock.advance(days=400)
    await create_item(cstore, title="live alpha")
    await archive(cstore)
    assert archived_ids(cstore) == {a["id"], b["id"], c["id"]}
    assert archived_ids(cstore, item_type="task") == {a["id"], c["id"]}
    assert archived_ids(cstore, priority="high") == {b["id"]}
    assert archived_ids(cstore, status="completed") == {c["id"]}
    assert archived_ids(cstore, text="alpha") == {a["id"]}
    page = archived(cstore, limit=2)
    assert len(page["items"]) == 2
    assert page["total_count"] == 3
    assert len(archived(cstore, limit=2, cursor=page["next_cursor"])["items"]) == 1


async def test_links_survive_archiving(cstore: Store, clock: FakeClock) -> None:
    a = await create_item(cstore)
    b = await create_item(cstore)
    await add_edge(cstore, a["id"], b["id"])
    clock.advance(days=400)
    await archive(cstore)
    assert [d["related_item"]["id"] for d in query_item(cstore, a["id"])["dependencies"]] == [b["id"]]


@pytest.mark.parametrize("after_days", [30, 730])
async def test_after_days_is_honoured(cstore: Store, clock: FakeClock, after_days: int) -> None:
    await create_item(cstore)
    clock.advance(days=100)
    assert (await archive(cstore, after_days))["archived"] == (1 if after_days == 30 else 0)
