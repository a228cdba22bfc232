"""Hand-edited and damaged files: any JSON or YAML value in any field is a skip or a warning, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from statusd.store import Store, WriteContext
from statusd.sync.importers import apply, read_plan, runner

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
ids = st.sampled_from(["a-1", "a-1.1", "a-2", "a-2.1.1", "x"]) | values
beads_records = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "title": values, "status": st.sampled_from(["open", "closed", "tombstone", "blocked"]) | values,
        "priority": values, "issue_type": values, "labels": values, "description": values, "_type": values,
        "dependencies": values | st.lists(st.fixed_dictionaries(
            {"depends_on_id": ids},
            optional={"issue_id": ids, "type": st.sampled_from(["blocks", "parent-child"]) | values},
        ), max_size=3),
    },
)  # fmt: skip
lines = st.lists(beads_records.map(json.dumps) | st.text(max_size=40).filter(lambda t: "\n" not in t), max_size=8)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


async def apply_to(store: Store, source: str, path: Path) -> None:
    plan = read_plan(source, path)
    report = await runner.apply_plan(store, WriteContext(actor="fuzz"), plan, apply.Options())
    assert report["created"] + report["updated"] + report["unchanged"] == len(plan.items)


@SETTINGS
@given(lines=lines)
@example(lines=[json.dumps({"id": "a-1", "dependencies": 5, "title": ["t"], "priority": True}), "[[[[", '"x"'])
async def test_any_beads_line_is_an_item_or_a_skip(tmp_path: Path, store: Store, lines: list[str]) -> None:
    file = tmp_path / "issues.jsonl"
    file.write_text("\n".join(lines) + "\n")
    plan = read_plan("beads", file)
    assert plan.records_read == len(plan.items) + len(plan.skips)  # every non-blank line, exactly once
    await apply_to(store, "beads", file)


tasks = st.lists(
    st.fixed_dictionaries(
        {"id": st.integers(1, 4) | values},
        optional={"title": values, "status": values, "priority": values, "dependencies": values,
                  "details": values, "subtasks": values | st.lists(st.fixed_dictionaries(
                      {"id": st.integers(1, 3) | values}, optional={"dependencies": values, "status": values}
                  ), max_size=3)},
    ) | values,
    max_size=5,
)  # fmt: skip


@SETTINGS
@given(
    body=st.one_of(
        tasks.map(lambda t: {"tasks": t}),
        st.dictionaries(st.text(min_size=1, max_size=6), tasks.map(lambda t: {"tasks": t}) | values, max_size=3),
    )
)
@example(
    body={
        "tasks": [
            {"id": 1, "dependencies": 7, "subtasks": 3},
            {"id": {"x": 1}, "subtasks": [{"id": 1, "dependencies": 2.5}]},
        ]
    }
)
async def test_any_tasks_json_imports_or_reports(tmp_path: Path, store: Store, body: dict) -> None:  # type: ignore[type-arg]
    (tmp_path / "tasks.json").write_text(json.dumps(body))
    await apply_to(store, "taskmaster", tmp_path)


front = st.dictionaries(
    st.sampled_from(["id", "title", "status", "priority", "dependencies", "parent_task_id", "labels", "assignee"]),
    values,
    max_size=6,
)


@SETTINGS
@given(files=st.lists(st.tuples(front, st.text(max_size=60)), min_size=1, max_size=4))
async def test_any_backlog_front_matter_imports_or_reports(tmp_path: Path, store: Store, files: list) -> None:  # type: ignore[type-arg]
    tasks_dir = tmp_path / "backlog" / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    for old in tasks_dir.glob("*.md"):
        old.unlink()
    for n, (data, body) in enumerate(files):
        text = "---\n" + yaml.safe_dump(data, allow_unicode=True) + "---\n" + body
        (tasks_dir / f"task-{n} - fuzz.md").write_text(text, encoding="utf-8", errors="surrogatepass")
    await apply_to(store, "backlog", tmp_path)
