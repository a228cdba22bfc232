"""Backlog.md folder → plan: config statuses, folders, front matter quirks, duplicates, sections."""

from __future__ import annotations

from pathlib import Path

import pytest
from importer_support import BACKLOG, by_key, edges, warning

from statusd.sync.importers import backlog, frontmatter, read_plan


@pytest.fixture(scope="module")
def plan():
    return read_plan("backlog", BACKLOG)


def test_finds_the_backlog_folder_from_the_project_or_itself() -> None:
    assert backlog.locate(BACKLOG) == BACKLOG / "backlog"
    assert backlog.locate(BACKLOG / "backlog") == BACKLOG / "backlog"


def test_config_statuses_are_matched_case_and_space_insensitively() -> None:
    statuses = backlog.Statuses(["To Do", "In Progress", "Blocked", "Ready for Review", "Done"])
    assert statuses.map("in progress") == ("active", True)
    assert statuses.map("DONE") == ("completed", True)
    assert statuses.map("readyforreview") == ("active", True)
    assert statuses.map("Blocked") == ("blocked", True)
    assert statuses.map("Someday") == ("active", False)
    custom = backlog.Statuses(["Backlog", "Doing", "Shipped"])  # Backlog.md: the last column is terminal
    assert custom.map("shipped") == ("completed", True)
    objects = backlog.Statuses([{"name": "Todo"}, {"name": "Won't do", "category": "dropped"}, {"name": "Review"}])
    assert objects.map("won't do") == ("completed", True) and objects.map("review") == ("active", True)


def test_statuses_and_folders(plan) -> None:
    items = by_key(plan)
    assert items["task-1"].status == "completed" and items["task-1"].metadata["source_status"] == "Done"
    assert items["task-2"].status == "active"  # "in progress" in a file, "In Progress" in config.yml
    assert items["task-2.1"].status == "blocked"
    assert items["task-6"].status == "completed"  # in completed/ whatever the status line says
    assert items["task-7"].deleted and items["task-7"].status == "active"  # archive/ → soft-deleted
    draft = items["draft-1"]
    assert draft.status == "blocked" and draft.metadata["backlog"]["draft"] is True
    assert "draft" in draft.metadata["blocked_reason"]


def test_unquoted_at_user_values_parse_the_way_backlog_md_reads_them(plan) -> None:
    items = by_key(plan)
    assert items["task-2"].metadata["backlog"]["assignee"] == "@carol"
    assert items["task-2.1"].metadata["backlog"]["assignee"] == ["@carol", "dave"]
    assert items["task-1"].metadata["backlog"]["reporter"] == "@bob"
    assert items["task-1"].metadata["backlog"]["created_date"] == "2025-06-01 10:15"
    assert items["task-2"].metadata["backlog"]["created_date"] == "2025-06-02"  # a date stays text


def test_file_without_front_matter_is_imported_from_its_name(plan) -> None:
    item = by_key(plan)["task-4"]
    assert item.title == "Shipping rates" and item.status == "active"
    assert item.description is not None and item.description.startswith("Call the carrier API")
    assert item.metadata["backlog"]["front_matter"] == "missing"
    warning(plan, "task-4 - Shipping-rates.md", "no front matter")


def test_duplicate_ids_are_both_kept_and_the_second_is_flagged(plan) -> None:
    dups = [i for i in plan.items if i.source_id.lower() == "task-3"]
    assert len(dups) == 2
    first, second = sorted(dups, key=lambda i: "@" in i.key)
    assert first.key == "task-3" and "duplicate_of" not in first.metadata["backlog"]
    assert second.metadata["backlog"]["duplicate_of"] == first.origin
    warning(plan, second.origin, "duplicate id")


def test_parent_dependencies_priority_labels_and_sections(plan) -> None:
    items = by_key(plan)
    assert items["task-2.1"].parent_key == "task-2"
    assert {("task-2", "task-1"), ("task-2.1", "task-3"), ("task-2.1", "task-1")} <= edges(plan)  # "1" is task-1
    assert items["task-1"].priority == "high" and items["task-2.1"].priority == "low"
    assert items["task-1"].metadata["backlog"]["labels"] == ["infra", "ci"]
    assert items["task-1"].description == "Run tests on every push."
    sections = items["task-1"].metadata["backlog"]["sections"]
    assert sections["Acceptance Criteria"] == "- [x] #1 Pipeline runs on push\n- [ ] #2 Badge in README"
    assert sections["Implementation Notes"] == "Used GitHub Actions."
    assert "## Not a heading inside a fence" in (items["task-2"].description or "")


def test_unknown_priority_and_dangling_dependency_warn_naming_the_file(plan) -> None:
    warning(plan, "task-3 - Payment-provider.md", "'urgent'")
    warning(plan, "task-3 - Payment-provider.md", "task-99", "not found")


def test_broken_front_matter_is_skipped_naming_file_and_line(plan) -> None:
    skips = {s.origin: s.reason for s in plan.skips}
    assert "not valid YAML" in skips["tasks/task-5 - Broken.md:4"]


def test_every_markdown_file_outside_the_documents_is_accounted_for(plan) -> None:
    skips = {s.origin: s.reason for s in plan.skips}
    assert "not in a Backlog.md task folder" in skips["WORK_PRIORITY.md"]
    assert "not a task" in skips["archive/epic-2-search/README.md"]
    archived = by_key(plan)["task-8"]  # archive/ filed by epic: still archived work
    assert archived.deleted and archived.status == "completed" and archived.parent_key == "task-2"
    assert not any("doc-1" in i.key for i in plan.items) and not any("docs/" in s.origin for s in plan.skips)
    assert plan.records_read == len(plan.items) + len(plan.skips) == 13


def test_front_matter_edge_cases(tmp_path: Path) -> None:
    assert frontmatter.split("no front matter\n") == (None, "no front matter\n")
    data, body = frontmatter.split("---\r\nassignee: @a\r\nreporter: 'x'\r\n---\r\nbody")
    assert data == {"assignee": "@a", "reporter": "x"} and body == "body"
    with pytest.raises(frontmatter.FrontMatterError, match="line 2"):
        frontmatter.split("---\n- just\n- a list\n---\n")
