"""``entities.insert_many`` (one statement per table, rows unpacked by SQLite from JSON) stores
exactly what ``entities.insert`` stores row by row: every column, the history record byte for
byte, and the outbox operation. Real SQLite files; values drawn to hit the JSON transport's edges
(non-ASCII, quotes and escapes, numbers-as-text, empty strings, large integers, nested metadata)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soak import bounded
from statusd.errors import ValidationError
from statusd.limits import MAX_METADATA_BYTES
from statusd.store import Store, WriteContext
from statusd.store import entities as ent

NOW = "2026-12-01T00:00:00.000000Z"
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
) | st.sampled_from(["", "123", "null", "true", '{"a":1}', "[1,2]", 'quote " and \\ backslash', "línea\nnueva\t€ 😀"])
JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
ITEM = st.fixed_dictionaries(
    {
        "item_type": st.sampled_from(["task", "epic", "bug"]),
        "title": TEXT.filter(bool),
        "description": st.none() | TEXT,
        "status": st.sampled_from(["active", "blocked", "completed"]),
        "priority": st.sampled_from(["critical", "high", "medium", "low"]),
        "depth": st.integers(0, 4),
        "pr_number": st.none() | st.integers(1, 2**31),
        "metadata": st.dictionaries(TEXT, JSONABLE, max_size=4),
        "deleted_at": st.none() | st.just(NOW),
    }
)


def _store(path: Path) -> Store:
    return Store(path, machine="m1", replicated=True, clock=lambda: NOW)


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    q = store.reader.execute
    return {
        "work_items": q("SELECT * FROM work_items WHERE created_by = 'batch' ORDER BY id").fetchall(),
        "dependencies": q("SELECT * FROM dependencies ORDER BY id").fetchall(),
        "history": q(
            "SELECT entity, entity_id, version, changes, actor, at, machine, via, typeof(changes) FROM history "
            "WHERE actor = 'batch' ORDER BY seq"
        ).fetchall(),
        "outbox": q(
            "SELECT entity, entity_id, base_version, new_version, changes, created_at, actor, via, asserts, run_id "
            "FROM outbox WHERE actor = 'batch' ORDER BY seq"
        ).fetchall(),
        "types": q(
            "SELECT typeof(depth), typeof(pr_number), typeof(description), typeof(metadata), typeof(version) "
            "FROM work_items WHERE created_by = 'batch' ORDER BY id"
        ).fetchall(),
    }


def _one_by_one(conn: Any, ctx: WriteContext, items: list[tuple[dict[str, Any], str]], edges: list[Any]) -> None:
    for values, ident in items:
        ent.insert(conn, ctx, ent.WORK_ITEM, values, ident)
    for values, ident in edges:
        ent.insert(conn, ctx, ent.DEPENDENCY, values, ident)


def _together(conn: Any, ctx: WriteContext, items: list[tuple[dict[str, Any], str]], edges: list[Any]) -> None:
    ent.insert_many(conn, ctx, ent.WORK_ITEM, items)
    ent.insert_many(conn, ctx, ent.DEPENDENCY, edges)


@settings(max_examples=bounded(40, 600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ITEM, min_size=1, max_size=6))
def test_insert_many_stores_what_insert_stores(values: list[dict[str, Any]]) -> None:
    items = [(v, f"00000000-0000-4000-8000-{i:012d}") for i, v in enumerate(values)]
    edges = [
        ({"work_item_id": items[i][1], "depends_on_id": items[i - 1][1], "dependency_type": "depends_on"},
         f"10000000-0000-4000-8000-{i:012d}")
        for i in range(1, len(items))
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        dumps = []
        for name, body in (("single", _one_by_one), ("many", _together)):
            store = _store(Path(tmp) / f"{name}.sqlite3")
            store.open()
            try:
                store.write_sync(body, WriteContext(actor="batch", via="tool"), items, edges)
                dumps.append(_dump(store))
            finally:
                store.close()
    single, many = dumps
    assert len(single["work_items"]) == len(items) and len(single["history"]) == len(items) + len(edges)
    assert many == single
    # The record itself, byte for byte as dumps writes a change record everywhere else.
    for (values, _), record in zip(items + edges, single["history"], strict=True):
        created = {k: {"old": None, "new": v} for k, v in values.items() if v is not None and k != "depth"}
        assert record[3] == ent.dumps(created)


async def test_insert_many_checks_metadata_size_and_writes_nothing(tmp_path: Path) -> None:
    big = {"blob": "x" * (MAX_METADATA_BYTES + 1)}
    items = [
        ({"item_type": "task", "title": "fine", "status": "active", "priority": "low", "depth": 0}, ent.new_id()),
        ({"item_type": "task", "title": "too big", "status": "active", "priority": "low", "depth": 0,
          "metadata": big}, ent.new_id()),
    ]  # fmt: skip
    async with _store(tmp_path / "s.sqlite3") as store:
        with pytest.raises(ValidationError) as err:
            store.write_sync(ent.insert_many, WriteContext(actor="batch"), ent.WORK_ITEM, items)
        assert err.value.fields[0]["field"] == "metadata"
        assert _dump(store)["work_items"] == [] and _dump(store)["history"] == []


@pytest.mark.parametrize("batch", [False, True])
async def test_a_lone_surrogate_is_refused_by_both_paths_and_nothing_is_written(tmp_path: Path, batch: bool) -> None:
    # Callers refuse such text at the tool boundary; if one reached the store anyway, the batch path
    # must not store what the one-row path cannot (\udc80 escaped in JSON would decode to bad UTF-8).
    values = {"item_type": "task", "title": "bad \udc80 title", "status": "active", "priority": "low", "depth": 0,
              "metadata": {}}  # fmt: skip
    items = [(values, ent.new_id())]
    async with _store(tmp_path / "s.sqlite3") as store:
        with pytest.raises(UnicodeEncodeError):
            store.write_sync(_together if batch else _one_by_one, WriteContext(actor="batch"), items, [])
        assert _dump(store)["work_items"] == [] and _dump(store)["history"] == []
