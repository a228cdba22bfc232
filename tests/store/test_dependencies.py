"""Dependencies (SPEC §2.2): cycles in the waits-for graph, idempotent edges, the ready rule."""

from __future__ import annotations

import pytest
from store_support import (
    FakeClock,
    add_edge,
    claim,
    create_item,
    get_item,
    history_count,
    list_ids,
    query_item,
    remove_edge,
    update_item,
)

from statusd.errors import CycleDetectedError, NotFoundError
from statusd.store import Store, WriteContext, dependencies, report


async def items(store: Store, n: int) -> list[str]:
    return [(await create_item(store, title=f"item {i}"))["id"] for i in range(n)]


def ready(store: Store) -> set[str]:
    return list_ids(store, ready=True)


# --- edges and cycles --------------------------------------------------------------------------


async def test_add_returns_the_edge_with_a_deterministic_id(store: Store) -> None:
    a, b = await items(store, 2)
    edge = await add_edge(store, a[:8], b[:8])
    assert (edge["work_item_id"], edge["depends_on_id"], edge["dependency_type"]) == (a, b, "depends_on")
    assert edge["id"] == dependencies.edge_id(a, b, "depends_on")
    assert edge["version"] == 1


@pytest.mark.parametrize("kind", ["depends_on", "blocks"])
async def test_self_edge_is_a_cycle(store: Store, kind: str) -> None:
    (a,) = await items(store, 1)
    with pytest.raises(CycleDetectedError):
        await add_edge(store, a, a, kind)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a", "b", "depends_on"), ("b", "a", "depends_on")),  # a waits b, then b waits a
        (("a", "b", "blocks"), ("b", "a", "blocks")),  # b waits a, then a waits b
        (("a", "b", "blocks"), ("a", "b", "depends_on")),  # b waits a, then a waits b
        (("a", "b", "depends_on"), ("a", "b", "blocks")),  # a waits b, then b waits a
    ],
    ids=["depends-depends", "blocks-blocks", "blocks-then-depends", "depends-then-blocks"],
)
async def test_two_edge_cycles_in_the_waits_for_graph(
    store: Store, first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    a, b = await items(store, 2)
    name = {"a": a, "b": b}
    await add_edge(store, name[first[0]], name[first[1]], first[2])
    with pytest.raises(CycleDetectedError) as exc:
        await add_edge(store, name[second[0]], name[second[1]], second[2])
    assert exc.value.code == "cycle_detected"


async def test_the_same_wait_spelled_both_ways_is_not_a_cycle(store: Store) -> None:
    a, b = await items(store, 2)
    await add_edge(store, a, b)  # a waits b
    edge = await add_edge(store, b, a, "blocks")  # b blocks a: a waits b again
    assert edge["version"] == 1
    assert ready(store) == {b}


async def test_longer_cycle_mixing_edge_types_is_rejected(store: Store) -> None:
    a, b, c, d = await items(store, 4)
    await add_edge(store, a, b)  # a waits b
    await add_edge(store, c, b, "blocks")  # b waits c
    await add_edge(store, c, d)  # c waits d
    count = history_count(store)
    with pytest.raises(CycleDetectedError):
        await add_edge(store, d, a, "depends_on")  # d waits a: closes a > b > c > d > a
    with pytest.raises(CycleDetectedError):
        await add_edge(store, a, d, "blocks")  # the same edge spelled the other way
    assert history_count(store) == count
    await add_edge(store, a, d)  # a waits d: no cycle (a diamond)


async def test_removed_edges_do_not_count_for_cycles(store: Store) -> None:
    a, b = await items(store, 2)
    await add_edge(store, a, b)
    await remove_edge(store, a, b)
    edge = await add_edge(store, b, a)
    assert edge["work_item_id"] == b


async def test_adding_an_existing_edge_is_a_no_op(store: Store) -> None:
    a, b = await items(store, 2)
    first = await add_edge(store, a, b, "blocks")
    count = history_count(store)
    again = await add_edge(store, a[:6], b, "blocks")
    assert again["id"] == first["id"]
    assert again["version"] == 1
    assert history_count(store) == count


async def test_remove_then_re_add_revives_the_same_edge(store: Store) -> None:
    a, b = await items(store, 2)
    first = await add_edge(store, a, b)
    removed = await remove_edge(store, a, b)
    assert removed["deleted_at"] is not None
    assert removed["version"] == 2
    assert query_item(store, a)["dependencies"] == []
    with pytest.raises(NotFoundError):
        await remove_edge(store, a, b)
    again = await add_edge(store, a, b)
    assert again["id"] == first["id"]
    assert again["deleted_at"] is None
    assert again["version"] == 3
    assert len(query_item(store, a)["dependencies"]) == 1


async def test_removing_a_missing_edge_is_not_found(store: Store) -> None:
    a, b = await items(store, 2)
    await add_edge(store, a, b, "blocks")
    with pytest.raises(NotFoundError) as exc:
        await remove_edge(store, a, b, "depends_on")
    assert exc.value.details["entity"] == "dependency"


async def test_edges_need_existing_live_items(store: Store) -> None:
    a, b = await items(store, 2)
    with pytest.raises(NotFoundError) as exc:
        await add_edge(store, a, "ffffffff")
    assert exc.value.details["field"] == "depends_on_id"
    with pytest.raises(NotFoundError) as exc:
        await add_edge(store, "ffffffff", a)
    assert exc.value.details["field"] == "work_item_id"
    await update_item(store, b, deleted=True)
    with pytest.raises(NotFoundError) as exc:
        await add_edge(store, a, b)
    assert exc.value.details["field"] == "depends_on_id"


async def test_query_reports_type_and_direction(store: Store) -> None:
    a, b, c = await items(store, 3)
    await add_edge(store, a, b)  # a depends on b
    await add_edge(store, a, c, "blocks")  # a blocks c
    deps_a = query_item(store, a)["dependencies"]
    assert sorted((d["type"], d["direction"], d["related_item"]["id"]) for d in deps_a) == sorted(
        [("depends_on", "outgoing", b), ("blocks", "outgoing", c)]
    )
    deps_b = query_item(store, b)["dependencies"]
    assert [(d["type"], d["direction"], d["related_item"]["id"]) for d in deps_b] == [("depends_on", "incoming", a)]
    assert deps_b[0]["related_item"] == {"id": a, "title": "item 0", "item_type": "task", "status": "active"}
    deps_c = query_item(store, c)["dependencies"]
    assert [(d["type"], d["direction"]) for d in deps_c] == [("blocks", "incoming")]
    assert "dependencies" not in query_item(store, a, include_dependencies=False)


# --- the ready rule ----------------------------------------------------------------------------


async def test_ready_requires_everything_waited_for_to_be_completed(store: Store) -> None:
    a, b, c = await items(store, 3)
    await add_edge(store, a, b)  # a waits b
    await add_edge(store, c, a, "blocks")  # a waits c
    assert ready(store) == {b, c}
    await update_item(store, b, status="completed")
    assert ready(store) == {c}
    await update_item(store, c, status="blocked")
    assert ready(store) == set()
    await update_item(store, c, status="completed")
    assert ready(store) == {a}
    assert list_ids(store, ready=False) == {b, c}


async def test_blocks_edges_hold_up_only_the_blocked_item(store: Store) -> None:
    a, b = await items(store, 2)
    await add_edge(store, a, b, "blocks")
    assert ready(store) == {a}


async def test_only_active_items_are_ready(store: Store) -> None:
    a, b, c = await items(store, 3)
    await update_item(store, b, status="blocked")
    await update_item(store, c, status="completed")
    assert ready(store) == {a}


async def test_deleted_items_are_not_ready_and_deleted_prerequisites_do_not_block(store: Store) -> None:
    a, b, c = await items(store, 3)
    await add_edge(store, a, b)
    await update_item(store, c, deleted=True)
    assert ready(store) == {b}
    await update_item(store, b, deleted=True)
    assert ready(store) == {a}


async def test_archived_prerequisites_do_not_block_and_archived_items_are_not_ready(
    cstore: Store, clock: FakeClock
) -> None:
    old = (await create_item(cstore, title="old"))["id"]
    clock.advance(days=400)
    new = (await create_item(cstore, title="new"))["id"]
    await add_edge(cstore, new, old)
    assert ready(cstore) == {old}
    # The edge made nothing recent on ``old`` itself, so it is archived on its own.
    await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
    assert get_item(cstore, old)["archived_at"] is not None
    assert ready(cstore) == {new}


async def test_removed_edges_do_not_block(store: Store) -> None:
    a, b = await items(store, 2)
    await add_edge(store, a, b)
    assert a not in ready(store)
    await remove_edge(store, a, b)
    assert a in ready(store)


async def test_claimed_items_are_not_ready_until_the_claim_expires(cstore: Store, clock: FakeClock) -> None:
    a, b = await items(cstore, 2)
    await claim(cstore, id=a, lease_minutes=10)
    assert ready(cstore) == {b}
    clock.advance(minutes=10)
    assert ready(cstore) == {a, b}
