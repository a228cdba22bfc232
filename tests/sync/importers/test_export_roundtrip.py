"""beads JSONL export: valid beads records, and export → import into an empty store reproduces the state."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import BEADS

from statusd import models as m
from statusd.errors import CycleDetectedError
from statusd.store import Store, WriteContext, dependencies, workitems
from statusd.sync.importers import apply, export, read_plan, runner

BEADS_STATUSES = {"open", "in_progress", "blocked", "deferred", "closed", "hooked", "pinned"}


def snapshot(store: Store, names: dict[str, str] | None = None) -> dict[str, Any]:
    """Titles, priorities, statuses, parents and waits-for edges, keyed by beads id."""
    conn = store.reader
    names = names or {
        ident: key for ident, key in conn.execute("SELECT id, json_extract(metadata, '$.source_id') FROM work_items")
    }
    items = {}
    for ident, title, priority, status, parent in conn.execute(
        "SELECT id, title, priority, status, parent_id FROM work_items WHERE deleted_at IS NULL"
    ):
        items[names[ident]] = (title, priority, status, names[parent] if parent else None)
    waits = set()
    for a, b, kind in conn.execute("SELECT work_item_id, depends_on_id, dependency_type FROM dependencies"):
        waiter, prereq = (a, b) if kind == "depends_on" else (b, a)
        waits.add((names[waiter], names[prereq]))
    return {"items": items, "waits": waits}


async def export_then_import(source: Store, tmp: Path) -> tuple[str, Store]:
    text = export.dumps(source.read(export.records))
    (tmp / "issues.jsonl").write_text(text)
    target = Store(tmp / "target.sqlite3", machine="m2")
    target.open()
    await runner.apply_plan(target, WriteContext(actor="t"), read_plan("beads", tmp), apply.Options())
    return text, target


def assert_valid_beads(text: str) -> None:
    ids = set()
    for line in text.splitlines():
        rec = json.loads(line)
        assert {"id", "title", "status", "priority", "issue_type", "created_at", "updated_at"} <= set(rec)
        assert rec["status"] in BEADS_STATUSES and rec["priority"] in range(5)
        assert ("closed_at" in rec) == (rec["status"] == "closed")  # beads' own invariant
        for dep in rec.get("dependencies", []):
            assert dep["issue_id"] == rec["id"] and dep["type"] in ("blocks", "parent-child", "related")
        ids.add(rec["id"])
    assert len(ids) == len(text.splitlines())


titles = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(str.strip)
states = st.lists(
    st.tuples(
        titles.map(str.strip),
        st.sampled_from(m.PRIORITIES),
        st.sampled_from(m.ITEM_STATUSES),
        st.sampled_from(("task", "project", "research")),
        st.integers(min_value=-1, max_value=20),  # parent: an earlier item's index, or none
    ),
    min_size=1,
    max_size=12,
)
edges = st.lists(
    st.tuples(st.integers(0, 11), st.integers(0, 11), st.sampled_from(("depends_on", "blocks"))), max_size=15
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=states, edges=edges)
async def test_export_then_import_reproduces_titles_priorities_statuses_hierarchy_and_dependencies(
    states: list[tuple[str, str, str, str, int]], edges: list[tuple[int, int, str]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "source.sqlite3", machine="m1") as source:
            ids: list[str] = []
            depth: list[int] = []
            ctx = WriteContext(actor="t")
            for title, priority, status, item_type, parent in states:
                parent_id = ids[parent] if 0 <= parent < len(ids) and depth[parent] < m.MAX_DEPTH else None
                args = m.parse_args(m.CreateWorkItemArgs, {
                    "item_type": item_type, "title": title, "priority": priority, "status": status,
                    **({"parent_id": parent_id} if parent_id else {}),
                })  # fmt: skip
                row = await source.write(workitems.create, ctx, args)
                ids.append(row["id"])
                depth.append(row["depth"])
            for a, b, kind in edges:
                if a < len(ids) and b < len(ids) and a != b:
                    edge = m.DependencyArgs(work_item_id=ids[a], depends_on_id=ids[b], dependency_type=kind)
                    with contextlib.suppress(CycleDetectedError):  # the store refuses it, so the export never has it
                        await source.write(dependencies.add, ctx, edge)
            expected = snapshot(source, source.read(export.beads_ids))
            text, target = await export_then_import(source, Path(tmp))
            try:
                assert_valid_beads(text)
                assert snapshot(target) == expected
            finally:
                target.close()


async def test_an_imported_beads_project_survives_export_and_reimport(tmp_path: Path) -> None:
    async with Store(tmp_path / "a.sqlite3", machine="m1") as source:
        await runner.apply_plan(source, WriteContext(actor="t"), read_plan("beads", BEADS), apply.Options())
        text, target = await export_then_import(source, tmp_path)
        try:
            assert_valid_beads(text)
            assert snapshot(target) == snapshot(source)
            exported = {json.loads(line)["id"]: json.loads(line) for line in text.splitlines()}
            assert exported["app-c3d"]["priority"] == 4 and exported["app-c3d"]["status"] == "hooked"
            assert exported["app-a1b.1"]["comments"][0]["text"] == "Looks good"
            assert {"type": "related", "issue_id": "app-i9j", "depends_on_id": "app-a1b"} in exported["app-i9j"][
                "dependencies"
            ]
            before = snapshot(source)
            again = await runner.apply_plan(
                source, WriteContext(actor="t"), read_plan("beads", tmp_path), apply.Options()
            )
            # Back into the store it came from: the same items (only where-from metadata moves on).
            assert (again["created"], again["conflicts"]) == (0, []) and snapshot(source) == before
        finally:
            target.close()
