"""beads JSONL → plan: the mapping rules of issue 11 on a file in beads' real shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from importer_support import BEADS, by_key, edges, warning

from statusd.sync.importers import beads, read_plan


@pytest.fixture(scope="module")
def plan():
    return read_plan("beads", BEADS)


def test_finds_the_jsonl_from_the_project_the_beads_dir_or_the_file() -> None:
    expected = BEADS / ".beads" / "issues.jsonl"
    assert beads.locate(BEADS) == expected
    assert beads.locate(BEADS / ".beads") == expected
    assert beads.locate(expected) == expected
    with pytest.raises(FileNotFoundError, match=r"issues\.jsonl"):
        beads.locate(BEADS.parent / "backlog")


@pytest.mark.parametrize(("value", "expected"), [(0, "critical"), (1, "high"), (2, "medium"), (3, "low"), (4, "low")])
def test_priorities(value: int, expected: str) -> None:
    assert beads.map_priority(value) == (expected, True)
    assert beads.map_priority(f"P{value}") == (expected, True)
    assert beads.map_priority(None) == ("critical", True)  # beads reads a missing priority as 0
    assert beads.map_priority(9) == ("medium", False)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("open", "active"), ("in_progress", "active"), ("hooked", "active"), ("blocked", "blocked"),
     ("closed", "completed"), ("done", "completed"), ("future", "active"), ("deferred", "active"),
     ("pinned", "active")],
)  # fmt: skip
def test_statuses(status: str, expected: str) -> None:
    assert beads.map_status(status) == expected


def test_items_statuses_types_and_priorities(plan) -> None:
    items = by_key(plan)
    assert items["app-a1b"].item_type == "project" and items["app-a1b"].priority == "high"
    assert items["app-a1b.2"].priority == "critical"
    assert items["app-c3d"].status == "active" and items["app-c3d"].metadata["source_status"] == "hooked"
    assert items["app-e5f"].status == "active" and items["app-e5f"].metadata["source_status"] == "deferred"
    assert items["app-i9j"].status == "active" and items["app-i9j"].metadata["source_status"] == "future"
    assert items["app-g7h"].status == "blocked"
    assert items["app-m2n"].status == "completed" and items["app-a1b.1.1"].status == "completed"
    assert items["app-c3d"].priority == "low" and items["app-c3d"].metadata["beads"]["priority"] == 4


def test_every_item_carries_its_source(plan) -> None:
    for item in plan.items:
        meta = item.metadata
        assert meta["source"] == "beads" and meta["source_id"] == item.source_id == item.key
        assert meta["source_path"].endswith(".beads/issues.jsonl")
        assert meta["source_status"]


def test_tombstones_memories_bad_lines_and_superseded_records_are_skipped_with_the_line(plan) -> None:
    reasons = {(s.origin, s.reason.split(" (")[0]) for s in plan.skips}
    assert ("issues.jsonl:9", "tombstone") in reasons
    assert ("issues.jsonl:10", "not an issue record") in reasons
    assert ("issues.jsonl:13", "not valid JSON") in reasons
    assert any(o == "issues.jsonl:14" and r.startswith("superseded") for o, r in reasons)
    assert "app-k1l" not in by_key(plan)
    assert by_key(plan)["app-s5t"].title == "Cache warmup on deploy"  # the later line wins
    assert plan.records_read == 15 and len(plan.items) + len(plan.skips) == plan.records_read


def test_dotted_ids_and_parent_child_edges_set_the_parent(plan) -> None:
    items = by_key(plan)
    assert items["app-a1b.1"].parent_key == "app-a1b"
    assert items["app-a1b.1.1"].parent_key == "app-a1b.1"
    assert items["app-c3d"].parent_key == "app-e5f"  # a parent-child edge: issue_id is the child
    assert [i.key for i in plan.items].index("app-a1b") < [i.key for i in plan.items].index("app-a1b.1.1")


def test_blocks_depends_on_and_subtask_of_keep_their_direction(plan) -> None:
    got = edges(plan)
    assert ("app-a1b.2", "app-a1b.1") in got  # blocks: issue_id waits for depends_on_id
    assert ("app-g7h", "app-c3d") in got  # no type and no issue_id: beads' default blocks, on this issue
    assert ("app-i9j", "app-g7h") in got  # depends-on
    assert ("app-o3p", "app-m2n") in got  # subtask-of
    assert not any(p == "app-a1b" for _, p in got)  # related is not an edge...
    assert by_key(plan)["app-i9j"].metadata["beads"]["other_edges"] == [
        {"type": "related", "issue_id": "app-i9j", "depends_on_id": "app-a1b"}
    ]  # ...it is kept in metadata


def test_dangling_edge_is_skipped_naming_the_line(plan) -> None:
    assert "issues.jsonl:8" in warning(plan, "app-zzz", "not found")
    assert ("app-i9j", "app-zzz") not in edges(plan)


def test_labels_comments_design_notes_assignee_and_timestamps_are_metadata_not_claims(plan) -> None:
    item = by_key(plan)["app-a1b.1"]
    kept = item.metadata["beads"]
    assert kept["design"] == "Use the grid" and kept["acceptance_criteria"] == "Totals match the server"
    assert kept["notes"] == "See Figma" and kept["assignee"] == "sam"
    assert kept["comments"][0]["text"] == "Looks good"
    assert kept["created_at"] == "2026-01-02T11:00:00Z" and kept["updated_at"] == "2026-01-04T09:00:00-05:00"
    assert by_key(plan)["app-a1b"].metadata["beads"]["labels"] == ["frontend", "q1"]


def test_nul_and_overlong_text_fit_the_store(tmp_path: Path) -> None:
    file = tmp_path / "issues.jsonl"
    long_title = "T" * 300
    file.write_text(
        '{"id":"x-1","title":"' + long_title + '","description":"a\\u0000b' + "d" * 25_000 + '","status":"open"}\n'
    )
    item = read_plan("beads", file).items[0]
    assert len(item.title) == 200 and item.metadata["beads"]["full_title"] == long_title
    assert item.description is not None and len(item.description) == 20_000 and "\x00" not in item.description
    assert item.description.startswith("a\ufffdb")
    assert len(item.metadata["beads"]["description_rest"]) == 25_003 - 20_000


def test_a_byte_order_mark_and_unicode_line_separators_inside_strings_do_not_split_records(tmp_path: Path) -> None:
    file = tmp_path / "issues.jsonl"
    text = '{"id":"x-1","title":"one\u2028two\u0085three","status":"open"}\r\n{"id":"x-2","title":"second"}\n'
    file.write_bytes(b"\xef\xbb\xbf" + text.encode())
    plan = read_plan("beads", file)
    assert [i.title for i in plan.items] == ["one\u2028two\u0085three", "second"] and not plan.skips
