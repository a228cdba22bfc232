"""History (SPEC §2.7): one record per accepted change, newest first, earlier versions rebuilt."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import (
    FakeClock,
    add_edge,
    create_enhancement,
    create_item,
    create_vendor,
    ctx,
    get_item,
    history_count,
    update_item,
    update_vendor,
)

from statusd import models as m
from statusd.errors import NotFoundError, ValidationError
from statusd.store import Store, WriteContext, history, workitems
from statusd.store import entities as ent

AUDIT = {"id", "version", "created_at", "created_by", "updated_at", "updated_by", "depth"}


def versions(store: Store, ident: str, limit: int = 50) -> list[dict[str, Any]]:
    return store.read(history.query, m.parse_args(m.QueryHistoryArgs, {"id": ident, "limit": limit}))["versions"]


async def test_create_and_update_records_changes_newest_first(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore, actor="alice", title="first", priority="high")
    t1 = clock()
    clock.advance(minutes=1)
    await update_item(cstore, item["id"], actor="bob", title="second", status="blocked")
    result = cstore.read(history.query, m.parse_args(m.QueryHistoryArgs, {"id": item["id"][:8]}))
    assert (result["id"], result["entity"]) == (item["id"], "work_item")
    newest, oldest = result["versions"]
    assert newest["version"] == 2
    assert (newest["by"], newest["at"], newest["via"], newest["machine"]) == ("bob", clock(), "tool", "test-machine")
    assert newest["changes"] == {
        "title": {"old": "first", "new": "second"},
        "status": {"old": "active", "new": "blocked"},
    }
    assert oldest["version"] == 1
    assert (oldest["by"], oldest["at"]) == ("alice", t1)
    assert oldest["changes"]["title"] == {"old": None, "new": "first"}
    assert oldest["changes"]["priority"] == {"old": None, "new": "high"}
    assert "depth" not in oldest["changes"], "derived columns are not history"


async def test_every_change_appends_exactly_one_record(store: Store) -> None:
    item = await create_item(store)
    assert history_count(store, item["id"]) == 1
    for i in range(3):
        await update_item(store, item["id"], title=f"title {i}")
    await update_item(store, item["id"], title="title 2")  # no-op: nothing recorded
    assert [v["version"] for v in versions(store, item["id"])] == [4, 3, 2, 1]


async def test_via_and_machine_are_recorded(store: Store) -> None:
    args = m.parse_args(m.CreateWorkItemArgs, {"item_type": "task", "title": "from markdown"})
    item = await store.write(workitems.create, WriteContext(actor="human", via="markdown", machine="laptop"), args)
    (record,) = versions(store, item["id"])
    assert (record["via"], record["machine"], record["by"]) == ("markdown", "laptop", "human")


async def test_store_machine_is_the_default(store: Store) -> None:
    item = await create_item(store)
    assert versions(store, item["id"])[0]["machine"] == "test-machine"


async def test_limit_and_unknown_ids(store: Store) -> None:
    item = await create_item(store)
    for i in range(4):
        await update_item(store, item["id"], title=f"t{i}")
    assert [v["version"] for v in versions(store, item["id"], limit=2)] == [5, 4]
    with pytest.raises(NotFoundError):
        versions(store, "ffffffff")
    with pytest.raises(ValidationError):
        versions(store, "xyz")


async def test_other_entities_have_history(store: Store) -> None:
    vendor = await create_vendor(store, "Acme")
    await update_vendor(store, "Acme", 1, status="operational")
    assert [v["changes"].get("status") for v in versions(store, vendor["id"])] == [
        {"old": "broken", "new": "operational"},
        {"old": None, "new": "broken"},
    ]
    enh = await create_enhancement(store)
    assert versions(store, enh["id"])[0]["changes"]["status"] == {"old": None, "new": "planned"}
    a, b = await create_item(store), await create_item(store)
    edge = await add_edge(store, a["id"], b["id"])
    assert store.read(history.query, m.parse_args(m.QueryHistoryArgs, {"id": edge["id"]}))["entity"] == "dependency"


async def test_state_at_rebuilds_every_earlier_version(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore, item_type="task", title="v1", description="d", metadata={"estimated_hours": 1})
    snapshots = {1: get_item(cstore, item["id"])}
    steps: list[dict[str, Any]] = [
        {"title": "v2", "priority": "critical"},
        {"description": None, "metadata": {"estimated_hours": 2, "note": "x"}},
        {"status": "completed", "metadata": {"note": None}},
        {"deleted": True},
        {"deleted": False, "commit_hash": "ABCDEF1"},
    ]
    for step in steps:
        clock.advance(minutes=1)
        row = await update_item(cstore, item["id"], **step)
        snapshots[row["version"]] = get_item(cstore, item["id"])
    assert sorted(snapshots) == [1, 2, 3, 4, 5, 6]
    for version, snapshot in snapshots.items():
        state = cstore.read(history.state_at, item["id"], version)
        expected = {k: v for k, v in snapshot.items() if k not in AUDIT and v is not None}
        assert {k: v for k, v in state.items() if v is not None} == expected, f"version {version}"


async def test_state_at_for_a_vendor(store: Store) -> None:
    await create_vendor(store, "Acme")
    v2 = await update_vendor(store, "Acme", 1, metadata={"extractor_version": "1.0"})
    await update_vendor(store, "Acme", 2, metadata={"extractor_version": "2.0"}, status="operational")
    at2 = store.read(history.state_at, v2["id"], 2)
    assert at2["metadata"]["extractor_version"] == "1.0"
    assert at2["status"] == "broken"


async def test_a_failed_write_records_nothing(store: Store) -> None:
    item = await create_item(store)
    count = history_count(store)

    def half_then_fail(conn: Any, c: WriteContext) -> None:
        current = ent.get(conn, ent.WORK_ITEM, item["id"])
        assert current is not None
        ent.update(conn, c, ent.WORK_ITEM, current, {"title": "never"})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.write(half_then_fail, ctx())
    assert history_count(store) == count
    assert get_item(store, item["id"])["title"] == "an item"
