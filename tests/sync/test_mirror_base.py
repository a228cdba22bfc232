"""The mirror keeps its base packed between saves, and gets back exactly what it packed (SPEC §11 P9)."""

from __future__ import annotations

import gc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mirror_support import mirror_env
from sync_support import wait_for
from test_markdown_roundtrip import sids, states

from statusd.sync.markdown_model import MirrorState, WorkItem
from statusd.sync.mirror import READ_CACHE_KIB
from statusd.sync.mirror_base import pack, unpack
from statusd.sync.mirror_state import Rendered

id_maps = st.dictionaries(sids, st.tuples(st.uuids().map(str), st.integers(-1, 10**6)), max_size=5)


def _lines(items: tuple[WorkItem, ...]) -> list[object]:
    return [(n.line, _lines(n.children)) for n in items]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
