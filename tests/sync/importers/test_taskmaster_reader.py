"""Task Master tasks.json → plan: legacy and tagged shapes, subtasks, every subtask-dependency form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from importer_support import TASKMASTER_LEGACY, TASKMASTER_TAGGED, by_key, edges, warning

from statusd.sync.importers import read_plan


@pytest.fixture(scope="module")
def tagged():
    return read_plan("taskmaster", TASKMASTER_TAGGED)


def test_one_project_root_per_tag_with_tasks_and_subtasks_below(tagged) -> None:
    items = by_key(tagged)
    assert items["master"].item_type == "project" and items["master"].parent_key is None
    assert items["feature-search"].item_type == "project"
    assert items["master"].description == "Tasks for master context"
    assert items["master/2"].parent_key == "master" and items["master/2.3"].parent_key == "master/2"
    assert items["feature-search/1.1"].parent_key == "feature-search/1"
    assert items["master/2.3"].source_id == "2.3" and items["master/2.3"].metadata["source_key"] == "master/2.3"


@pytest.mark.parametrize(
    ("key", "status"),
    [("master/1", "completed"), ("master/2", "active"), ("master/2.3", "active"), ("master/3", "active"),
     ("master/2.4", "blocked"), ("master/3.1", "completed"), ("master/4", "active")],
)  # fmt: skip
def test_statuses(tagged, key: str, status: str) -> None:
    assert by_key(tagged)[key].status == status


def test_subtask_dependencies_in_every_form(tagged) -> None:
    got = edges(tagged)
    assert ("master/2.2", "master/2.1") in got  # sibling number
    assert ("master/2.3", "master/2.2") in got  # dotted string
    assert ("master/2.3", "master/2.1") in got  # plain string: a sibling, as Task Master reads it
    assert ("master/2.4", "master/2.3") in got
    assert ("master/3.1", "master/2") in got  # no sibling 2: the top-level task 2
    assert ("master/3", "master/2") in got  # "2" on a task is task 2


def test_details_null_priority_fallback_and_kept_fields(tagged) -> None:
    items = by_key(tagged)
    assert "details" not in items["master/2"].metadata["taskmaster"]  # null details: nothing to keep
    assert items["master/1"].metadata["taskmaster"]["details"] == "Use pnpm workspaces."
    assert items["master/1"].metadata["taskmaster"]["testStrategy"] == "CI passes on an empty commit."
    assert items["master/2.1"].priority == "high"  # a subtask without priority takes its parent's
    assert items["master/2.3"].priority == "critical"


def test_unknown_status_and_dangling_dependency_warn(tagged) -> None:
    warning(tagged, "tasks[3]", "'todo-ish'")
    warning(tagged, "tasks[2]", "master/9", "not found")


def test_legacy_shape_becomes_the_master_tag() -> None:
    plan = read_plan("taskmaster", TASKMASTER_LEGACY)
    items = by_key(plan)
    assert set(items) == {"master", "master/1", "master/2", "master/2.1", "master/2.2"}
    assert items["master"].metadata["taskmaster"]["legacy_format"] is True
    assert items["master"].metadata["taskmaster"]["tag_metadata"]["projectName"] == "Legacy app"
    assert edges(plan) == {("master/2", "master/1"), ("master/2.2", "master/2.1")}


def test_not_json_is_one_skip_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "tasks.json").write_text('{\n  "tasks": [\n')
    plan = read_plan("taskmaster", tmp_path)
    (skip,) = plan.skips
    assert skip.origin.startswith("tasks.json:") and "not valid JSON" in skip.reason and not plan.items


def test_duplicate_task_ids_in_a_tag_are_both_kept(tmp_path: Path) -> None:
    tasks = [{"id": 1, "title": "a", "status": "pending"}, {"id": 1, "title": "b", "status": "done"}]
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    plan = read_plan("taskmaster", tmp_path)
    assert sorted(i.title for i in plan.items if i.item_type == "task") == ["a", "b"]
    warning(plan, "id 1 repeats")
