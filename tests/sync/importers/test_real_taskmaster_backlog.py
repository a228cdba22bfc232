"""Whole real Task Master and Backlog.md projects (tests/fixtures/importers/real, SOURCE.md in each):
a 140 KB legacy tasks.json, a tagged one with irregular subtask ids, and a 56-task backlog folder.

Every expectation is derived from the source files by the small, independent parsers below (not
from the importer): the record count, each record's id, title, status, parent and prerequisites,
and what each tool itself calls ready. The import must account for every record, change nothing
when run again, survive export → import, and agree with the source on ready.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from importer_support import FIXTURES, list_items, live_waits
from test_real_sources import ready_source_ids, run

from statusd.store import Store
from statusd.sync.importers import export, read_plan

REAL = FIXTURES / "real"
VERITAS = REAL / "taskmaster-aj-davis-veritas-logos"
TYPOSENTINEL = REAL / "taskmaster-alivanroy-typosentinel"
NUTRISENSIA = REAL / "taskmaster-adriencornille-nutrisensia"
PANIC = REAL / "backlog-anucybernetics-panic"

# ---- Task Master, read the way Task Master reads it ------------------------------------------

TM_DONE = {"done", "completed"}  # task-master next: a dependency is satisfied when done/completed
TM_WORKABLE = {"pending", "in-progress"}  # next-task candidates (docs/decisions.md: in-progress is active)


def tm_tags(path: Path) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data.get("tasks"), list):
        return {"master": data["tasks"]}
    return {tag: body["tasks"] for tag, body in data.items()}


def tm_sub_id(parent: str, raw: Any) -> str:
    """A subtask's full id. Hand-written files sometimes give the full dotted id (``29.1``, ``"7.1"``)."""
    text = str(raw)
    return text if text.startswith(f"{parent}.") else f"{parent}.{text}"


def tm_records(path: Path) -> dict[str, dict[str, Any]]:
    """Full id -> {title, status, parent, deps}, one entry per task and subtask (tags apart)."""
    out: dict[str, dict[str, Any]] = {}
    for tasks in tm_tags(path).values():
        for task in tasks:
            tid = str(task["id"])
            out[tid] = {"title": task["title"], "status": task["status"], "parent": None,
                        "deps": sorted(str(d) for d in task.get("dependencies") or [])}  # fmt: skip
            for sub in task.get("subtasks") or []:
                sid = tm_sub_id(tid, sub["id"])
                deps = [str(d) if "." in str(d) else f"{tid}.{d}" for d in sub.get("dependencies") or []]
                out[sid] = {"title": sub.get("title"), "status": sub["status"], "parent": tid, "deps": sorted(deps)}
    return out


def tm_ready(path: Path) -> set[str]:
    records = tm_records(path)
    ready = {
        rid
        for rid, r in records.items()
        if r["status"] in TM_WORKABLE and all(records[d]["status"] in TM_DONE for d in r["deps"])
    }
    return ready | set(tm_tags(path))  # statusd also lists each tag's synthetic project


# ---- Backlog.md, read the way Backlog.md reads it --------------------------------------------

FRONT = re.compile(r"\A---\n(.*?)\n---", re.DOTALL)


def canonical(ident: str) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group())), ident.strip().lower())


def bl_tasks(root: Path) -> dict[str, dict[str, Any]]:
    """Canonical id -> {folder, status, deps} for every task file in tasks/ and completed/."""
    out: dict[str, dict[str, Any]] = {}
    for folder in ("tasks", "completed"):
        for file in sorted((root / "backlog" / folder).glob("*.md")):
            match = FRONT.match(file.read_text(encoding="utf-8"))
            data = yaml.safe_load(match.group(1)) if match else {}
            ident = str(data.get("id") or file.name.split(" - ")[0])
            out[canonical(ident)] = {"id": ident, "folder": folder, "status": str(data.get("status") or ""),
                                     "deps": [canonical(d) for d in data.get("dependencies") or []]}  # fmt: skip
    return out


def bl_ready(root: Path) -> set[str]:
    """Backlog.md's src/utils/readiness.ts: an active task whose status is not the terminal (last)
    one and whose every dependency resolves to a task in the terminal status."""
    statuses = yaml.safe_load((root / "backlog" / "config.yml").read_text(encoding="utf-8"))["statuses"]

    def terminal(status: str) -> bool:
        return re.sub(r"\s+", "", status).lower() == re.sub(r"\s+", "", statuses[-1]).lower()

    tasks = bl_tasks(root)
    return {
        t["id"]
        for t in tasks.values()
        if t["folder"] == "tasks"
        and not terminal(t["status"])
        and all(d in tasks and terminal(tasks[d]["status"]) for d in t["deps"])
    }


# ---- what the store holds, by title (export → import gives new ids) --------------------------


def shape_by_title(store: Store) -> list[tuple[str, str, str, str | None, tuple[str, ...]]]:
    """Every live item as (title, priority, status, parent's title, prerequisites' titles), sorted:
    what survives an export → import, where ids are new (a few titles repeat, so not a dict)."""
    rows = store.reader.execute(
        "SELECT id, title, priority, status, parent_id FROM work_items WHERE deleted_at IS NULL"
    ).fetchall()
    title = {r[0]: r[1] for r in rows}
    waits: dict[str, list[str]] = {}
    for waiter, prereq in live_waits(store.reader):
        waits.setdefault(waiter, []).append(title[prereq])
    return sorted((r[1], r[2], r[3], title.get(r[4]), tuple(sorted(waits.get(r[0], [])))) for r in rows)


def source_shape(store: Store) -> dict[str, tuple[str | None, list[str]]]:
    """source id -> (parent's source id, prerequisites' source ids)."""
    rows = store.reader.execute(
        "SELECT id, json_extract(metadata, '$.source_id'), parent_id FROM work_items WHERE deleted_at IS NULL"
    ).fetchall()
    sid = {r[0]: str(r[1]) for r in rows}
    waits: dict[str, list[str]] = {}
    for waiter, prereq in live_waits(store.reader):
        waits.setdefault(sid[waiter], []).append(sid[prereq])
    return {sid[r[0]]: (sid.get(r[2]), sorted(waits.get(sid[r[0]], []))) for r in rows}


async def import_twice_export_and_back(kind: str, path: Path, tmp_path: Path, records: int) -> dict[str, Any]:
    """The checks every real project gets; returns the first report and what the store held."""
    async with Store(tmp_path / "a.sqlite3", machine="a") as store:
        dry = await run(store, kind, path, dry_run=True)
        assert list_items(store)["total_count"] == 0
        first = await run(store, kind, path)
        assert {k: v for k, v in first.items() if k != "dry_run"} == {k: v for k, v in dry.items() if k != "dry_run"}
        assert first["records_read"] == records
        assert first["created"] + first["updated"] + first["unchanged"] + first["skipped"] == records
        again = await run(store, kind, path)
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, first["created"])
        assert again["dependencies"] == {"created": 0, "unchanged": first["dependencies"]["created"]}
        assert not again["conflicts"]
        shape = shape_by_title(store)
        ready = ready_source_ids(store)
        sources = source_shape(store)
        ready_titles = sorted(i["title"] for i in list_items(store, ready=True, limit=500)["items"])
        exported = export.dumps(store.read(export.records))
    (tmp_path / "export.jsonl").write_text(exported)
    async with Store(tmp_path / "b.sqlite3", machine="b") as target:
        back = await run(target, "beads", tmp_path / "export.jsonl")
        assert (back["created"], back["skipped"], back["import_warnings"]) == (len(shape), 0, [])
        assert shape_by_title(target) == shape  # titles, priorities, statuses, hierarchy, dependencies
        assert sorted(i["title"] for i in list_items(target, ready=True, limit=500)["items"]) == ready_titles
    return {"report": first, "ready": ready, "sources": sources}


# ---- the projects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "file"),
    [
        (VERITAS, VERITAS / "tasks" / "tasks.json"),
        (TYPOSENTINEL, TYPOSENTINEL / ".taskmaster" / "tasks" / "tasks.json"),
        (NUTRISENSIA, NUTRISENSIA / ".taskmaster" / "tasks" / "tasks.json"),
    ],
    ids=["veritas-logos", "typosentinel", "nutrisensia"],
)
async def test_a_whole_task_master_project_is_accounted_for_round_trips_and_agrees_on_ready(
    project: Path, file: Path, tmp_path: Path
) -> None:
    records = tm_records(file)
    done = await import_twice_export_and_back("taskmaster", project, tmp_path, len(records) + len(tm_tags(file)))
    assert done["report"]["created"] == done["report"]["records_read"] and not done["report"]["skips"]
    assert done["ready"] == tm_ready(file)
    # every task and subtask is there under its own id, below its parent, waiting for what the file says
    for rid, record in records.items():
        assert done["sources"][rid] == (record["parent"] or "master", record["deps"]), rid


def test_the_large_files_keep_their_numbers() -> None:
    # a hand-check of the independent parser on the two files over 100 KB
    veritas = VERITAS / "tasks" / "tasks.json"
    tasks = tm_tags(veritas)["master"]
    assert veritas.stat().st_size > 100_000
    assert (len(tasks), sum(len(t.get("subtasks") or []) for t in tasks)) == (12, 42)
    assert tm_ready(veritas) == {"master", "12", "12.5"}
    nutri = NUTRISENSIA / ".taskmaster" / "tasks" / "tasks.json"
    tasks = tm_tags(nutri)["master"]
    assert nutri.stat().st_size > 180_000
    assert (len(tasks), sum(len(t.get("subtasks") or []) for t in tasks)) == (25, 151)
    ready = tm_ready(nutri)
    assert {"2", "2.4", "2.5", "9", "22", "22.1", "22.2"} <= ready and "2.7" not in ready  # 2.7 waits for 2.4
    # Task Master's next offers subtasks of in-progress parents only; statusd, like the simple rule
    # here, lists a pending subtask with nothing to wait for even while its parent waits (10.1).
    assert "10.1" in ready and "10" not in ready


async def test_a_whole_backlog_folder_is_accounted_for_round_trips_and_agrees_on_ready(tmp_path: Path) -> None:
    tasks = bl_tasks(PANIC)
    done = await import_twice_export_and_back("backlog", PANIC, tmp_path, len(tasks))
    report = done["report"]
    assert report["created"] == len(tasks) == 56 and not report["skips"]
    assert report["dependencies"]["created"] == sum(len(t["deps"]) for t in tasks.values()) == 3
    assert done["ready"] == bl_ready(PANIC)
    # two files without front matter, one status that config.yml does not list: each is named
    assert sorted(w.split(":")[0] for w in report["import_warnings"]) == [
        "tasks/task-28 - fully scripted raspi setup.md",
        "tasks/task-29 - add-ansible-to-rpi-setup-process.md",
        "tasks/task-43 - Add-NetworkRunner-status-component-with-countdown.md",
    ]
    assert {t["id"] for t in tasks.values()} == set(done["sources"])


def test_done_is_not_terminal_when_another_column_comes_last_as_backlog_md_says() -> None:
    # panic's columns are To Do, In Progress, Done, Thought Bubbles: Backlog.md's isTerminalStatus
    # takes the last one, so "Done" tasks still in tasks/ are open work there, and here.
    items = {i.source_id: i for i in read_plan("backlog", PANIC).items}
    assert items["task-40"].metadata["source_status"] == "Done" and items["task-40"].status == "active"
    assert items["task-10"].metadata["source_status"] == "Thought Bubbles" and items["task-10"].status == "completed"
    assert items["task-1"].status == "completed"  # completed/ is done whatever its status says
    assert "task-40" in bl_ready(PANIC) and "task-10" not in bl_ready(PANIC)


# ---- reader bugs these files found -----------------------------------------------------------


def test_a_subtask_id_written_as_the_full_dotted_id_is_not_prefixed_again() -> None:
    # veritas_logos writes task 7's subtasks as "7.1" … "7.6"; Typosentinel writes 29.1 as a JSON number.
    veritas = {i.source_id for i in read_plan("taskmaster", VERITAS).items}
    assert {f"7.{n}" for n in range(1, 7)} <= veritas and not any(s.startswith("7.7.") for s in veritas)
    typo = {i.key: i for i in read_plan("taskmaster", TYPOSENTINEL).items}
    assert {"master/29.1", "master/29.2", "master/30.6"} <= set(typo)
    assert typo["master/30.1"].parent_key == "master/30" and typo["master/30.1"].title == "Untitled 30.1"
    assert "master/31.311" in typo  # 311 does not start with "31.": kept as written


def test_headings_inside_a_backlog_md_section_block_stay_in_that_section() -> None:
    # Backlog.md reads the Description as everything between its SECTION:DESCRIPTION markers
    # (src/markdown/structured-sections.ts), "## Problem" and all.
    items = {i.source_id: i for i in read_plan("backlog", PANIC).items}
    ci = items["task-54"]
    assert ci.description is not None and ci.description.startswith("## Problem\n\nAfter upgrading ash_authentication")
    assert ci.description.rstrip().endswith("- Commit that triggered issue: b52ada5 (deps.update)")
    assert "sections" not in ci.metadata["backlog"]
    flux = items["task-8"]
    assert flux.description is not None and "## New models to add" in flux.description
    assert list(flux.metadata["backlog"]["sections"]) == ["Implementation Notes"]
    notes = items["task-19"].metadata["backlog"]["sections"]
    assert list(notes) == ["Acceptance Criteria", "Implementation Notes"]
    assert "## Status as of 2026-09-03" in notes["Implementation Notes"]
