"""The mirror keeps its base packed between saves, and gets back exactly what it packed (SPEC §11 P9)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mirror_support import mirror_env
from sync_support import wait_for
from test_markdown_roundtrip import sids, states

from soak import bounded
from statusd.store.mirror_snapshot import READ_CACHE_KIB
from statusd.sync import mirror as mirror_module
from statusd.sync.markdown_model import MirrorState, WorkItem
from statusd.sync.mirror_base import pack, unpack
from statusd.sync.mirror_state import Rendered

id_maps = st.dictionaries(sids, st.tuples(st.uuids().map(str), st.integers(-1, 10**6)), max_size=5)


def _lines(items: tuple[WorkItem, ...]) -> list[object]:
    return [(n.line, _lines(n.children)) for n in items]


@settings(max_examples=bounded(60, 1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states, id_maps, id_maps, st.booleans(), st.integers(0, 10**5))
def test_unpack_of_pack_is_the_rendered_state(
    state: MirrorState, items: dict[str, tuple[str, int]], vendors: dict[str, tuple[str, int]], alias: bool, line: int
) -> None:
    # Line numbers are not compared (a parsed base carries them): check them apart.
    state = MirrorState(**{**state.__dict__, "work_items": tuple(
        WorkItem(**{**w.__dict__, "line": line + i}) for i, w in enumerate(state.work_items)
    )})  # fmt: skip
    ids = {"vendors": vendors, "work_items": items, "sessions": items if alias else dict(items)}
    rendered = Rendered(state=state, ids=ids)

    back = unpack(pack(rendered))

    assert back == rendered
    assert _lines(back.state.work_items) == _lines(state.work_items)
    assert (back.ids["sessions"] is back.ids["work_items"]) == alias


async def test_between_saves_the_mirror_holds_its_base_in_a_few_objects(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        parent = await env.create_item("Parent", item_type="project")
        for i in range(150):
            await env.create_item(f"Item {i}", parent_id=parent["id"])
        await env.written_with("Item 149")
        await env.settled()

        base = env.mirror.base
        # One object (unpacked: 151 work items, their ids, titles and short ids, over 600 objects).
        assert type(base) is bytes
        assert gc.get_referents(base) == []

        # And an edit made against it is still applied against the version its line was rendered from.
        text = env.text().replace("Item 7 (task", "Item seven (task")
        env.human_save(text)
        await wait_for(lambda: any(i["title"] == "Item seven" for i in env.items()), what="the import")
        assert [i["title"] for i in env.items() if i["title"].startswith("Item ")][:9] == [
            *(f"Item {i}" for i in range(7)),
            "Item seven",
            "Item 8",
        ]


async def test_the_mirror_reads_through_a_small_page_cache(tmp_path: Path) -> None:
    # SQLite's default keeps up to 2 MB of pages per connection for the connection's life.
    async with mirror_env(tmp_path) as env:
        await env.create_item("An item")
        await env.written_with("An item")
        conn = env.mirror._conn
        assert conn is not None
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -READ_CACHE_KIB <= -64
        assert READ_CACHE_KIB <= 512


async def test_start_writes_the_file_before_the_daemon_serves(tmp_path: Path) -> None:
    # The render happens while nothing else allocates (no client is served before start returns).
    async with mirror_env(tmp_path, start=False) as env:
        await env.create_item("There at start")
        await env.mirror.start()
        assert "There at start" in env.text()  # no writer task has run yet
        assert env.mirror.writes == 1 and env.mirror.written.is_set()
        assert not env.mirror._dirty.is_set()  # and it will not render the same state again


@pytest.mark.parametrize("collect", [True, False])
async def test_a_large_render_is_followed_by_a_full_collection_only_in_a_daemon_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collect: bool
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(mirror_module.gc, "collect", lambda *a: calls.append(1) or 0)
    monkeypatch.setattr(mirror_module, "COLLECT_AFTER_BYTES", 2_000)
    async with mirror_env(tmp_path, start=False, collect_after_render=collect) as env:
        await env.create_item("Small")
        await env.mirror.start()
        assert calls == []  # a small render: nothing to give back
        for i in range(40):
            await env.create_item(f"Item number {i} with a title long enough to matter")
        await env.mirror.start()  # snapshot + render, both large now
        assert len(calls) == (2 if collect else 0)
        assert await asyncio.to_thread(env.mirror.render_report, None) == env.text()
        assert len(calls) == (3 if collect else 0)
