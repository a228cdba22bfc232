"""Larger real files (tests/fixtures/importers/real): beads' own issues.jsonl (the first 112 KB, 129
records, 34 tombstones), every record accounted for, ready as ``bd ready`` computes it from the file,
and the priority beads gives a record that has none."""

from __future__ import annotations

import json
import time
from pathlib import Path

from importer_support import FIXTURES, list_items, live_waits
from test_real_sources import ready_source_ids, run

from statusd.store import Store
from statusd.sync.importers import export

REAL = FIXTURES / "real"
# Edge types ``bd ready`` waits on (beads' IsDirectBlocker); parent-child only builds the tree.
WAITS = {"blocks", "conditional-blocks", "waits-for"}


def bd_ready(path: Path) -> set[str]:
    """What ``bd ready`` lists for this file alone: open or in progress, no open prerequisite in the file."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    live = {r["id"]: r for r in records if r.get("status") != "tombstone"}
    waiting = {
        r["id"]
        for r in live.values()
        for dep in r.get("dependencies") or []
        if (dep.get("type") or "blocks") in WAITS
        and dep["depends_on_id"] in live
        and live[dep["depends_on_id"]].get("status") != "closed"
    }
    return {k for k, r in live.items() if r.get("status") in ("open", "in_progress") and k not in waiting}


def source_shape(store: Store) -> dict[str, tuple[str, str, str, str | None, list[str]]]:
    """source id -> (title, priority, status, parent's source id, prerequisites' source ids)."""
    rows = store.reader.execute(
        "SELECT id, json_extract(metadata, '$.source_id'), title, priority, status, parent_id "
        "FROM work_items WHERE deleted_at IS NULL"
    ).fetchall()
    sid = {r[0]: r[1] for r in rows}
    waits: dict[str, list[str]] = {}
    for waiter, prereq in live_waits(store.reader):
        waits.setdefault(waiter, []).append(sid[prereq])
    return {r[1]: (r[2], r[3], r[4], sid.get(r[5]), sorted(waits.get(r[0], []))) for r in rows}


async def test_beads_own_issues_jsonl_is_accounted_for_round_trips_and_agrees_with_bd_ready(tmp_path: Path) -> None:
    source = REAL / "beads-beads" / ".beads" / "issues.jsonl"
    lines = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    tombstones = sum(1 for r in lines if r["status"] == "tombstone")
    started = time.perf_counter()
    async with Store(tmp_path / "a.sqlite3", machine="a") as store:
        first = await run(store, "beads", source)
        assert first["records_read"] == len(lines) == 129
        assert (first["created"], first["skipped"]) == (len(lines) - tombstones, tombstones) == (95, 34)
        assert {s["reason"] for s in first["skips"]} == {"tombstone (deleted in beads)"}
        # The excerpt ends before some prerequisites and one parent: each is a warning naming its line.
        assert first["dependencies"]["created"] == 15
        missing = [w for w in first["import_warnings"] if "not found" in w]
        assert len(missing) == len(first["import_warnings"]) == 15
        assert all(w.startswith("issues.jsonl:") for w in missing)
        again = await run(store, "beads", source)
        assert (again["created"], again["updated"], again["unchanged"], again["skipped"]) == (0, 0, 95, 34)
        assert again["dependencies"] == {"created": 0, "unchanged": 15} and not again["conflicts"]
        assert ready_source_ids(store) == bd_ready(source)
        assert len(bd_ready(source)) == 36
        shape = source_shape(store)
        exported = export.dumps(store.read(export.records))
    (tmp_path / "export.jsonl").write_text(exported)
    async with Store(tmp_path / "b.sqlite3", machine="b") as target:
        back = await run(target, "beads", tmp_path / "export.jsonl")
        assert (back["created"], back["skipped"], back["import_warnings"]) == (95, 0, [])
        assert source_shape(target) == shape
        assert ready_source_ids(target) == bd_ready(source)
    assert time.perf_counter() - started < 10


async def test_a_beads_record_without_a_priority_is_p0_as_beads_reads_it(store: Store, tmp_path: Path) -> None:
    # beads' own file of December 2025 never writes "priority":0 (omitempty); its P0 records have none.
    source = REAL / "beads-beads-p0" / ".beads" / "issues.jsonl"
    assert all("priority" not in r for r in map(json.loads, source.read_text().splitlines()) if r["id"] == "bd-2oo")
    await run(store, "beads", source)
    priority = {sid: p for sid, (_, p, *_) in source_shape(store).items()}
    assert priority == {
        "bd-2oo": "critical",
        "bd-2oo.1": "critical",
        "bd-2oo.3": "critical",
        "bd-bw6": "critical",
        "bd-mql4": "low",
        "bd-tggf": "medium",
        "bd-dhza": "low",
    }
    exported = {r["id"]: r for r in store.read(export.records)}
    assert exported["bd-2oo"]["priority"] == 0 and exported["bd-mql4"]["priority"] == 4
    assert sorted(i["title"] for i in list_items(store, ready=True)["items"]) == [
        "Code Health Review Dec 2025: Technical Debt Cleanup",
        "getLocalSyncBranch silently ignores YAML parse errors",
    ]


async def test_beads_dolt_backup_is_found_and_its_dependency_table_read(store: Store, tmp_path: Path) -> None:
    # beads on Dolt keeps .beads/backup/{issues,dependencies,...}.jsonl: no ``dependencies`` on the issues.
    project = REAL / "beads-dolt-backup"
    first = await run(store, "beads", project)
    assert (first["records_read"], first["created"], first["skipped"]) == (3, 3, 0)
    warnings = first["import_warnings"]
    assert any("blocks edge bd-05a8 -> bd-tggf skipped: bd-tggf not found" in w for w in warnings)
    assert sum("dependencies.jsonl:" in w and "has no issue" in w for w in warnings) == 2
    assert ready_source_ids(store) == {"bd-019", "bd-17p"}
    # The backup writes every flag as 0/1: an ephemeral wisp (1) stays out of ready as bd ready leaves it.
    lines = (project / ".beads" / "backup" / "issues.jsonl").read_text().splitlines()
    (tmp_path / "issues.jsonl").write_text(lines[2].replace('"ephemeral":0', '"ephemeral":1') + "\n")
    async with Store(tmp_path / "w.sqlite3", machine="w") as other:
        await run(other, "beads", tmp_path / "issues.jsonl")
        assert ready_source_ids(other) == set()
        assert [i["status"] for i in list_items(other)["items"]] == ["blocked"]
