"""Real public beads / Backlog.md / Task Master files (tests/fixtures/importers/real): every record
accounted for, re-import changes nothing, export → import reproduces, and ``ready`` matches the source's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from importer_support import FIXTURES, list_items

from statusd.store import Store, WriteContext
from statusd.sync.importers import apply, export, read_plan, runner

REAL = FIXTURES / "real"

# (kind, path, what the source itself calls ready). beads: open and not waiting on an open blocker
# (bd ready lists epics too); Task Master: pending with every dependency done (``task-master next``'s
# candidates); Backlog.md: the first (to-do) column with no open dependency. statusd also lists the
# synthetic "Task Master: <tag>" project, and ``in-progress`` work, which is active (docs/decisions.md).
CASES: list[tuple[str, str, set[str]]] = [
    ("beads", "beads-skyhook", {"skyhook-gld"}),
    ("backlog", "backlog-notara", set()),
    ("backlog", "backlog-lint4d", {"TASK-1.2", "TASK-143"}),
    ("backlog", "backlog-backlogmd", {"BACK-217", "BACK-217.03"}),
    ("taskmaster", "taskmaster-tajdin", {"master", "24", "24.3", "24.4"}),
    ("taskmaster", "taskmaster-infinite-menu", {"master", "6", "8", "9", "10", "14", "15", "16"}),
    ("taskmaster", "taskmaster-openclaw", {"master"}),
    ("taskmaster", "taskmaster-tasks-cli", set()),
]


async def run(store: Store, kind: str, path: Path, **options: Any) -> dict[str, Any]:
    plan = read_plan(kind, path)
    opts = apply.Options(**options)
    result: dict[str, Any] = await runner.apply_plan(store, WriteContext(actor="stranger"), plan, opts)
    return result


def ready_source_ids(store: Store) -> set[str]:
    ready = {r["id"] for r in list_items(store, ready=True, limit=500)["items"]}
    rows = store.reader.execute("SELECT id, json_extract(metadata, '$.source_id') FROM work_items").fetchall()
    return {str(source_id) for ident, source_id in rows if ident in ready}


def titles(store: Store) -> list[str]:
    return sorted(r[0] for r in store.reader.execute("SELECT title FROM work_items WHERE deleted_at IS NULL"))


@pytest.mark.parametrize(("kind", "name", "source_ready"), CASES, ids=[c[1] for c in CASES])
async def test_a_real_file_is_accounted_for_idempotent_round_trips_and_agrees_on_ready(
    kind: str, name: str, source_ready: set[str], tmp_path: Path
) -> None:
    async with Store(tmp_path / "a.sqlite3", machine="a") as store:
        dry = await run(store, kind, REAL / name, dry_run=True)
        assert list_items(store)["total_count"] == 0
        first = await run(store, kind, REAL / name)
        assert {k: v for k, v in first.items() if k != "dry_run"} == {k: v for k, v in dry.items() if k != "dry_run"}
        assert first["created"] + first["updated"] + first["unchanged"] + first["skipped"] == first["records_read"]
        assert all(skip["reason"] for skip in first["skips"])
        again = await run(store, kind, REAL / name)
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, first["created"])
        assert again["dependencies"]["created"] == 0 and not again["conflicts"]
        assert ready_source_ids(store) == source_ready
        exported = export.dumps(store.read(export.records))
        expected_titles = titles(store)
        ready_titles = sorted(i["title"] for i in list_items(store, ready=True, limit=500)["items"])
    (tmp_path / "export.jsonl").write_text(exported)
    async with Store(tmp_path / "b.sqlite3", machine="b") as target:
        back = await run(target, "beads", tmp_path / "export.jsonl")
        assert back["skipped"] == 0 and back["created"] == len(expected_titles)
        assert titles(target) == expected_titles
        assert sorted(i["title"] for i in list_items(target, ready=True, limit=500)["items"]) == ready_titles


async def test_a_tasks_json_that_names_its_tasks_keeps_the_name_as_the_title(store: Store) -> None:
    await run(store, "taskmaster", REAL / "taskmaster-openclaw")
    assert {"示例任务：每日问候", "Simmer 市场扫描"} <= set(titles(store))
    assert not any(t.startswith("Untitled") for t in titles(store))


async def test_beads_conditional_blocks_and_waits_for_keep_the_waiter_out_of_ready(
    store: Store, tmp_path: Path
) -> None:
    # The two blocker types beads' AffectsReadyWork adds to ``blocks`` (types.go: IsDirectBlocker).
    lines = [
        '{"id":"x-1","title":"Try the fast path","status":"open","priority":2,"issue_type":"task"}',
        '{"id":"x-2","title":"Fallback if it fails","status":"open","priority":2,"issue_type":"task",'
        '"dependencies":[{"issue_id":"x-2","depends_on_id":"x-1","type":"conditional-blocks"}]}',
        '{"id":"x-3","title":"Aggregate","status":"open","priority":2,"issue_type":"task",'
        '"dependencies":[{"issue_id":"x-3","depends_on_id":"x-1","type":"waits-for","metadata":"{\\"gate\\":\\"all-children\\"}"}]}',
        '{"id":"x-4","title":"Found on the way","status":"open","priority":2,"issue_type":"bug",'
        '"dependencies":[{"issue_id":"x-4","depends_on_id":"x-1","type":"discovered-from"}]}',
    ]
    (tmp_path / "issues.jsonl").write_text("\n".join(lines) + "\n")
    result = await run(store, "beads", tmp_path / "issues.jsonl")
    assert result["dependencies"]["created"] == 2
    assert ready_source_ids(store) == {"x-1", "x-4"}


async def test_beads_templates_pinned_markers_and_wisps_stay_out_of_ready_as_bd_ready_leaves_them(
    store: Store, tmp_path: Path
) -> None:
    lines = [
        '{"id":"m-1","title":"Real work","status":"open","priority":2,"issue_type":"task"}',
        '{"id":"m-2","title":"Release molecule","status":"open","priority":2,"issue_type":"epic","is_template":true}',
        '{"id":"m-3","title":"Project context","status":"open","priority":1,"issue_type":"task","pinned":true}',
        '{"id":"m-4","title":"Patrol step","status":"open","priority":2,"issue_type":"task","ephemeral":true}',
        '{"id":"m-5","title":"Old template","status":"closed","priority":2,"issue_type":"task","is_template":true}',
    ]
    (tmp_path / "issues.jsonl").write_text("\n".join(lines) + "\n")
    first = await run(store, "beads", tmp_path / "issues.jsonl")
    assert first["created"] == 5 and first["records_read"] == 5
    assert ready_source_ids(store) == {"m-1"}
    blocked = list_items(store, status="blocked")["items"]
    assert sorted(i["title"] for i in blocked) == ["Patrol step", "Project context", "Release molecule"]
    again = await run(store, "beads", tmp_path / "issues.jsonl")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 5)
    (tmp_path / "export.jsonl").write_text(export.dumps(store.read(export.records)))
    async with Store(tmp_path / "b.sqlite3", machine="b") as target:
        await run(target, "beads", tmp_path / "export.jsonl")
        assert ready_source_ids(target) == {"m-1"}


async def test_backlog_references_written_with_a_retired_task_prefix_find_their_tasks(
    store: Store, tmp_path: Path
) -> None:
    # MrLesk/Backlog.md itself moved from task- to BACK- ids; BACK-100.8 (verbatim front matter) still
    # names its parent and prerequisites the old way. The other two files are minimal stand-ins.
    tasks = tmp_path / "backlog" / "tasks"
    tasks.mkdir(parents=True)
    (tmp_path / "backlog" / "config.yml").write_text('project_name: "Backlog.md"\ntask_prefix: "back"\n')
    (tasks / "back-100 - Web-UI.md").write_text("---\nid: BACK-100\ntitle: Web UI\nstatus: To Do\n---\n")
    (tasks / "back-100.1 - Server.md").write_text(
        "---\nid: BACK-100.1\ntitle: Server\nstatus: To Do\nparent_task_id: task-100\n---\n"
    )
    (tasks / "back-100.8 - Add-documentation-and-examples.md").write_text(
        "---\nid: BACK-100.8\ntitle: Add documentation and examples\nstatus: Done\nassignee: []\n"
        "created_date: '2025-06-22'\nupdated_date: '2025-07-06'\nlabels: []\ndependencies:\n  - task-100.1\n"
        "parent_task_id: task-100\n---\n\n## Description\n\nDocument web UI usage and development setup.\n"
    )
    result = await run(store, "backlog", tmp_path)
    assert result["dependencies"]["created"] == 1 and not result["import_warnings"]
    rows = store.reader.execute(
        "SELECT json_extract(c.metadata, '$.source_id'), json_extract(p.metadata, '$.source_id') "
        "FROM work_items c JOIN work_items p ON c.parent_id = p.id"
    ).fetchall()
    assert sorted(rows) == [("BACK-100.1", "BACK-100"), ("BACK-100.8", "BACK-100")]
    assert ready_source_ids(store) == {"BACK-100", "BACK-100.1"}


async def test_a_dep_type_field_is_read_like_type_so_parent_child_never_becomes_a_blocker(
    store: Store, tmp_path: Path
) -> None:
    # rivets' issues.jsonl (a beads-compatible tracker) spells the edge type ``dep_type``.
    lines = [
        '{"id":"rivets-j9bu","title":"Tethys epic","status":"open","priority":1,"issue_type":"epic"}',
        '{"id":"rivets-a1","title":"Child","status":"open","priority":2,"issue_type":"task",'
        '"dependencies":[{"issue_id":"rivets-a1","depends_on_id":"rivets-j9bu","dep_type":"parent-child"}]}',
    ]
    (tmp_path / "issues.jsonl").write_text("\n".join(lines) + "\n")
    result = await run(store, "beads", tmp_path / "issues.jsonl")
    assert result["dependencies"]["created"] == 0
    assert ready_source_ids(store) == {"rivets-j9bu", "rivets-a1"}
    (child,) = list_items(store, text="Child")["items"]
    (epic,) = list_items(store, text="Tethys epic")["items"]
    assert child["parent_id"] == epic["id"]


async def test_a_repeated_task_master_id_keeps_its_own_dependencies_and_subtasks(store: Store, tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    tasks = [
        {"id": 1, "title": "One", "status": "pending", "dependencies": []},
        {"id": 2, "title": "Two", "status": "done", "dependencies": [1]},
        {
            "id": 2,
            "title": "Two again",
            "status": "pending",
            "dependencies": [1],
            "subtasks": [
                {"id": 1, "title": "Again's first step", "status": "pending"},
                {"id": 2, "title": "Again's second step", "status": "pending", "dependencies": [1]},
            ],
        },
        {"id": 3, "title": "Three", "status": "pending", "dependencies": [2]},
    ]
    (tmp_path / "tasks" / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    result = await run(store, "taskmaster", tmp_path)
    assert result["created"] == result["records_read"] == 7
    assert "id 2 repeats" in " ".join(result["import_warnings"])
    # "Two again" waits for the pending One, as Task Master says; its second step waits for its own first.
    ready = {i["title"] for i in list_items(store, ready=True)["items"]}
    assert ready == {"Task Master: master", "One", "Three", "Again's first step"}
    (again,) = list_items(store, text="Two again")["items"]
    steps = list_items(store, parent_id=again["id"])["items"]
    assert sorted(s["title"] for s in steps) == ["Again's first step", "Again's second step"]
