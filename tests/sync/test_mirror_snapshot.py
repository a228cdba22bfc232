"""The mirror's snapshot: what it shows, the query behind it, and what it leaves behind (SPEC §9, §11 P8/P9)."""

from __future__ import annotations

import gc
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soak import bounded
from statusd import models as m
from statusd.store import Store, WriteContext, mirror_snapshot, workitems
from statusd.sync import mirror_state
from statusd.sync.markdown_model import SHORT_ID, WorkItem, short_ids
from statusd.sync.mirror_state import snapshot


async def _item(store: Store, **fields: Any) -> dict[str, Any]:
    fields.setdefault("item_type", "task")
    return await store.write(workitems.create, WriteContext(actor="t"), m.parse_args(m.CreateWorkItemArgs, fields))


async def _complete(store: Store, ident: str) -> None:
    version = store.read(lambda c: c.execute("SELECT version FROM work_items WHERE id = ?", (ident,)).fetchone()[0])
    args = m.parse_args(m.UpdateWorkItemArgs, {"id": ident, "version": version, "status": "completed"})
    await store.write(workitems.update, WriteContext(actor="t"), args)


async def test_open_items_show_under_their_completed_ancestors_in_display_order(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m") as store:
        done_root = await _item(store, item_type="project", title="done root")
        done_mid = await _item(store, item_type="task", title="done mid", parent_id=done_root["id"])
        await _item(store, title="open under done", parent_id=done_mid["id"])
        open_root = await _item(store, item_type="project", title="open root")
        await _item(store, title="open child", parent_id=open_root["id"])
        gone = await _item(store, item_type="project", title="completed, nothing open")
        await _item(store, title="finished too", parent_id=gone["id"], status="completed")
        session = await _item(
            store, item_type="session", title="a session", description="Do the thing",
            metadata={"yaml_frontmatter": {"schema_version": 1, "agent": "x"}},
        )  # fmt: skip
        for item in (done_mid, done_root, gone):
            await _complete(store, item["id"])

        state = store.read(snapshot).state

    def outline(nodes: tuple[Any, ...]) -> list[Any]:
        return [(n.title, n.status, outline(n.children)) for n in nodes]

    assert outline(state.work_items) == [
        ("done root", "completed", [("done mid", "completed", [("open under done", "active", [])])]),
        ("open root", "active", [("open child", "active", [])]),
        ("a session", "active", []),
    ]
    assert [(s.title, s.prompt, s.front_matter) for s in state.sessions] == [
        ("a session", "Do the thing", "agent: x\nschema_version: 1\n")
    ]
    assert session["id"].startswith(state.sessions[0].sid or "-")


async def test_the_open_items_are_read_from_their_index_alone_already_in_order(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m") as store:
        plan = store.read(lambda c: c.execute("EXPLAIN QUERY PLAN " + mirror_snapshot.OPEN_ITEMS_SQL).fetchall())
    details = " | ".join(str(row[-1]) for row in plan)
    assert "COVERING INDEX work_items_open" in details
    assert "TEMP B-TREE" not in details  # no sort: the index is in display order


async def test_a_snapshot_leaves_no_reference_cycles_behind(tmp_path: Path) -> None:
    # A cycle keeps every row of the snapshot alive until a full collection, which in the daemon
    # (high thresholds, frozen start-up objects) may not come for hours.
    async with Store(tmp_path / "s.sqlite3", machine="m") as store:
        parent = await _item(store, item_type="project", title="p")
        for i in range(20):
            await _item(store, title=f"child {i}", parent_id=parent["id"])
        was = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            rendered = store.read(snapshot)
            assert len(rendered.state.work_items[0].children) == 20
            del rendered
            assert gc.collect() == 0
        finally:
            if was:
                gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_collector_is_paused_during_a_snapshot_and_left_as_it_was(tmp_path: Path, enabled: bool) -> None:
    seen: list[bool] = []
    real = mirror_snapshot.work_item_rows

    def rows(conn: Any) -> list[tuple[Any, ...]]:
        seen.append(gc.isenabled())
        return real(conn)

    was = gc.isenabled()
    async with Store(tmp_path / "s.sqlite3", machine="m") as store:
        await _item(store, title="one")
        mp = pytest.MonkeyPatch()
        mp.setattr(mirror_state.mirror_snapshot, "work_item_rows", rows)
        (gc.enable if enabled else gc.disable)()
        try:
            store.read(snapshot)
            assert (seen, gc.isenabled()) == ([False], enabled)
        finally:
            mp.undo()
            (gc.enable if was else gc.disable)()


def _shortest_unique_prefix(ident: str, ids: list[str]) -> str:
    others = list(ids)
    others.remove(ident)  # a duplicate stays among the others: it keeps its whole id
    for n in range(SHORT_ID, len(ident) + 1):
        if not any(o.startswith(ident[:n]) for o in others):
            return ident[:n]
    return ident


@settings(max_examples=bounded(100, 3000), deadline=None)
@given(st.lists(st.text("01", min_size=1, max_size=12), max_size=30) | st.lists(st.uuids().map(str), max_size=30))
def test_short_ids_are_the_shortest_unique_prefixes_of_at_least_eight_characters(ids: list[str]) -> None:
    assert short_ids(ids) == {ident: _shortest_unique_prefix(ident, ids) for ident in ids}


async def test_snapshot_work_items_are_what_their_constructor_makes(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m") as store:
        parent = await _item(store, item_type="project", title="p")
        await _item(store, title="c", parent_id=parent["id"], priority="high", status="blocked")
        state = store.read(snapshot).state

    def check(nodes: tuple[WorkItem, ...]) -> None:
        for n in nodes:
            built = WorkItem(n.sid, n.title, n.item_type, n.priority, n.status, n.children)
            assert (n, hash(n), repr(n), vars(n)) == (built, hash(built), repr(built), vars(built))
            with pytest.raises(FrozenInstanceError):
                n.title = "x"  # type: ignore[misc]
            check(n.children)

    check(state.work_items)
    assert len(state.work_items) == 1 and len(state.work_items[0].children) == 1


async def test_a_snapshot_for_a_render_alone_has_the_same_state_and_no_ids(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m") as store:
        parent = await _item(store, item_type="project", title="p")
        await _item(store, title="c", parent_id=parent["id"])
        full = store.read(snapshot, "banner")
        bare = store.read(lambda c: snapshot(c, "banner", with_ids=False))
    assert bare.state == full.state and bare.ids == {}
    assert set(full.ids) == {"vendors", "work_items", "sessions", "deployments", "enhancements"}
