"""Work-item hierarchy (SPEC §2.1): depth limit, re-parenting subtrees, cycles, id prefixes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from store_support import FakeClock, create_item, get_item, history_count, list_ids, query_item, update_item

from statusd.errors import CycleDetectedError, DepthLimitError, NotFoundError, ValidationError
from statusd.store import Store, WriteContext, report
from statusd.store import entities as ent


async def chain(store: Store, length: int, under: str | None = None) -> list[str]:
    """Create ``length`` items, each the child of the previous; return their ids."""
    ids: list[str] = []
    parent = under
    for i in range(length):
        item = await create_item(store, title=f"level {i}", parent_id=parent)
        ids.append(item["id"])
        parent = item["id"]
    return ids


def depths(store: Store, ids: list[str]) -> list[int]:
    return [get_item(store, i)["depth"] for i in ids]


async def test_depths_0_to_4_are_allowed_and_5_is_rejected(store: Store) -> None:
    ids = await chain(store, 5)
    assert depths(store, ids) == [0, 1, 2, 3, 4]
    with pytest.raises(DepthLimitError) as exc:
        await create_item(store, title="too deep", parent_id=ids[-1])
    assert exc.value.code == "depth_limit"
    assert exc.value.details == {"depth": 5, "max_depth": 4}
    assert len(list_ids(store)) == 5


async def test_parent_chain_is_root_first_and_excludes_self(store: Store) -> None:
    ids = await chain(store, 4)
    result = query_item(store, ids[-1])
    assert [p["id"] for p in result["parent_chain"]] == ids[:-1]
    assert result["parent_chain"][0]["title"] == "level 0"
    assert query_item(store, ids[0])["parent_chain"] == []


async def test_children_are_nested_recursively_and_exclude_deleted(store: Store) -> None:
    root = await create_item(store, title="root")
    a = await create_item(store, title="a", parent_id=root["id"])
    a1 = await create_item(store, title="a1", parent_id=a["id"])
    b = await create_item(store, title="b", parent_id=root["id"])
    await update_item(store, b["id"], deleted=True)
    tree = query_item(store, root["id"], include_children=True)["children"]
    assert [c["id"] for c in tree] == [a["id"]]
    assert [c["id"] for c in tree[0]["children"]] == [a1["id"]]
    assert tree[0]["children"][0]["children"] == []
    assert "children" not in query_item(store, root["id"])


async def test_list_by_parent_and_root(store: Store) -> None:
    root = await create_item(store)
    child = await create_item(store, parent_id=root["id"])
    await create_item(store, parent_id=child["id"])
    assert list_ids(store, parent_id="root") == {root["id"]}
    assert list_ids(store, parent_id=root["id"][:8]) == {child["id"]}


async def test_reparenting_moves_the_whole_subtree(store: Store) -> None:
    a, b, c = await chain(store, 3)  # a(0) > b(1) > c(2)
    x, y, z = await chain(store, 3)  # x(0) > y(1) > z(2)
    moved = await update_item(store, b, parent_id=z)
    assert moved["parent_id"] == z
    assert moved["depth"] == 3
    assert depths(store, [b, c]) == [3, 4]
    assert [p["id"] for p in query_item(store, c)["parent_chain"]] == [x, y, z, b]
    assert query_item(store, a, include_children=True)["children"] == []
    # Depth is derived: the descendants' versions are untouched, only the moved item's bumps.
    assert get_item(store, c)["version"] == 1
    assert get_item(store, b)["version"] == 2


async def test_parent_id_null_moves_to_root(store: Store) -> None:
    ids = await chain(store, 4)
    moved = await update_item(store, ids[1], parent_id=None)
    assert moved["parent_id"] is None
    assert depths(store, ids) == [0, 0, 1, 2]
    assert ids[1] in list_ids(store, parent_id="root")


async def test_moving_to_the_same_parent_is_a_no_op(store: Store) -> None:
    root, child = await chain(store, 2)
    result = await update_item(store, child, parent_id=root[:10])
    assert result["version"] == 1


@pytest.mark.parametrize("target", [0, 1, 2], ids=["self", "child", "grandchild"])
async def test_moving_under_self_or_a_descendant_is_a_cycle(store: Store, target: int) -> None:
    top = await create_item(store, title="top")
    ids = await chain(store, 3, under=top["id"])  # ids[0] is moved under ids[target]
    before = [get_item(store, i) for i in ids]
    with pytest.raises(CycleDetectedError) as exc:
        await update_item(store, ids[0], parent_id=ids[target])
    assert exc.value.code == "cycle_detected"
    assert [get_item(store, i) for i in ids] == before


async def test_a_move_that_pushes_a_descendant_past_depth_4_is_rejected(store: Store) -> None:
    a, b, c = await chain(store, 3)  # a subtree of height 2
    _x, y, z = await chain(store, 3)
    await update_item(store, a, parent_id=y)  # a at 2, b at 3, c at 4: allowed
    assert depths(store, [a, b, c]) == [2, 3, 4]
    before = {i: get_item(store, i) for i in (a, b, c)}
    with pytest.raises(DepthLimitError) as exc:  # a at 3, b at 4, c at 5
        await update_item(store, a, parent_id=z)
    assert exc.value.details == {"depth": 5, "max_depth": 4}
    assert {i: get_item(store, i) for i in (a, b, c)} == before


async def test_a_rejected_move_changes_nothing_and_records_nothing(store: Store) -> None:
    ids = await chain(store, 5)
    _root, other = await chain(store, 2)
    count = history_count(store)
    with pytest.raises(DepthLimitError):  # ids[1] would land at 2 and ids[4] at 5
        await update_item(store, ids[1], parent_id=other, title="renamed too")
    assert depths(store, ids) == [0, 1, 2, 3, 4]
    assert get_item(store, ids[1])["title"] == "level 1"
    assert history_count(store) == count


@pytest.mark.parametrize("state", ["deleted", "archived"])
async def test_parent_must_not_be_deleted_or_archived(cstore: Store, clock: FakeClock, state: str) -> None:
    parent = await create_item(cstore, title="parent")
    if state == "deleted":
        await update_item(cstore, parent["id"], deleted=True)
    else:
        clock.advance(days=400)
        await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
        assert get_item(cstore, parent["id"])["archived_at"] is not None
    with pytest.raises(ValidationError) as exc:
        await create_item(cstore, parent_id=parent["id"])
    assert [f["field"] for f in exc.value.fields] == ["parent_id"]
    assert state in exc.value.message
    other = await create_item(cstore)
    with pytest.raises(ValidationError):
        await update_item(cstore, other["id"], parent_id=parent["id"])


# --- id prefixes -------------------------------------------------------------------------------


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make the next entities take these ids, in order."""
    queue = [
        "abcdef01-0000-4000-8000-000000000001",
        "abcdef01-0000-4000-8000-000000000002",
        "abcdef99-0000-4000-8000-000000000003",
    ]
    pending = list(queue)
    original = ent.new_id
    monkeypatch.setattr(ent, "new_id", lambda: pending.pop(0) if pending else original())
    yield queue


async def test_unique_prefix_of_at_least_6_hex_resolves(store: Store, fixed_ids: list[str]) -> None:
    for _ in fixed_ids:
        await create_item(store)
    assert query_item(store, "abcdef9")["id"] == fixed_ids[2]
    assert query_item(store, "ABCDEF99")["id"] == fixed_ids[2]
    assert query_item(store, "abcdef01-0000-4000-8000-000000000002")["id"] == fixed_ids[1]
    child = await create_item(store, parent_id="abcdef99")
    assert child["parent_id"] == fixed_ids[2]


async def test_ambiguous_prefix_is_a_validation_error(store: Store, fixed_ids: list[str]) -> None:
    for _ in fixed_ids:
        await create_item(store)
    with pytest.raises(ValidationError) as exc:
        query_item(store, "abcdef01")
    assert exc.value.fields[0]["field"] == "id"
    assert "ambiguous" in exc.value.message
    with pytest.raises(ValidationError) as exc:
        await create_item(store, parent_id="abcdef")
    assert exc.value.fields[0]["field"] == "parent_id"


@pytest.mark.parametrize("text", ["abcde", "ghijkl", "abc-de"])
async def test_prefix_shorter_than_6_hex_is_a_validation_error(store: Store, text: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, parent_id=text)
    assert exc.value.fields[0]["field"] == "parent_id"


async def test_unknown_id_is_not_found_naming_the_field(store: Store) -> None:
    await create_item(store)
    with pytest.raises(NotFoundError) as exc:
        await create_item(store, parent_id="0000000000")
    assert exc.value.details == {"entity": "work_item", "id": "0000000000", "field": "parent_id"}
    with pytest.raises(NotFoundError) as exc:
        await create_item(store, parent_id="00000000-0000-4000-8000-000000000000")
    assert exc.value.details["field"] == "parent_id"
    with pytest.raises(NotFoundError) as exc:
        query_item(store, "ffffffff")
    assert exc.value.details["field"] == "id"


async def test_a_move_is_one_transaction(store: Store) -> None:
    """A failure while re-depthing the subtree undoes the move itself and its history record."""
    a, b, c = await chain(store, 3)
    target = await create_item(store)
    store.write_sync(
        lambda conn, _ctx: conn.execute(
            "CREATE TRIGGER fail_depth BEFORE UPDATE OF depth ON work_items "
            f"WHEN NEW.id = '{c}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ),
        WriteContext(actor="test"),
    )
    count = history_count(store)
    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        await update_item(store, b, parent_id=None)
    assert get_item(store, b)["parent_id"] == a
    assert depths(store, [a, b, c]) == [0, 1, 2]
    assert history_count(store) == count
    store.write_sync(lambda conn, _ctx: conn.execute("DROP TRIGGER fail_depth"), WriteContext(actor="test"))
    await update_item(store, b, parent_id=target["id"])
    assert depths(store, [b, c]) == [1, 2]
