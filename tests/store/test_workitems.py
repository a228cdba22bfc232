"""Work items (SPEC §2.1): fields, metadata by type, git links, updates, soft delete, archived read-only."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import FakeClock, create_item, get_item, history_count, list_ids, list_items, query_item, update_item

from statusd import models as m
from statusd.errors import NotFoundError, ValidationError
from statusd.store import Store, WriteContext, configuration, report


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [f["field"] for f in exc.value.fields]


# --- create ------------------------------------------------------------------------------------


async def test_create_returns_version_1_with_audit_fields_and_defaults(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore, actor="alice", title="Write the parser")
    assert item["version"] == 1
    assert item["status"] == "active"
    assert item["priority"] == "medium"
    assert item["depth"] == 0
    assert item["parent_id"] is None
    assert item["created_by"] == item["updated_by"] == "alice"
    assert item["created_at"] == item["updated_at"] == clock()
    assert len(item["id"]) == 36
    stored = get_item(cstore, item["id"])
    assert stored["title"] == "Write the parser"
    assert stored["metadata"] == {}


@pytest.mark.parametrize("title", ["  padded title  ", "\tx\n"])
async def test_title_is_trimmed(store: Store, title: str) -> None:
    item = await create_item(store, title=title)
    assert get_item(store, item["id"])["title"] == title.strip()


async def test_title_of_200_chars_after_trimming_is_accepted(store: Store) -> None:
    item = await create_item(store, title="  " + "t" * 200 + "  ")
    assert get_item(store, item["id"])["title"] == "t" * 200


@pytest.mark.parametrize("title", ["", "   ", "t" * 201])
async def test_title_outside_1_to_200_is_rejected(store: Store, title: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, title=title)
    assert fields_of(exc) == ["title"]


async def test_description_limit_is_20000(store: Store) -> None:
    ok = await create_item(store, description="d" * 20_000)
    assert len(get_item(store, ok["id"])["description"]) == 20_000
    with pytest.raises(ValidationError) as exc:
        await create_item(store, description="d" * 20_001)
    assert fields_of(exc) == ["description"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("item_type", "epic"), ("status", "done"), ("priority", "urgent"), ("item_type", "TASK")],
)
async def test_enum_fields_reject_unknown_values(store: Store, field: str, value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, **{field: value})
    assert fields_of(exc) == [field]


@pytest.mark.parametrize("item_type", m.ITEM_TYPES)
@pytest.mark.parametrize("status", m.ITEM_STATUSES)
async def test_every_type_and_status_is_accepted(store: Store, item_type: str, status: str) -> None:
    item = await create_item(store, item_type=item_type, status=status, priority="low")
    row = get_item(store, item["id"])
    assert (row["item_type"], row["status"], row["priority"]) == (item_type, status, "low")


# --- metadata by type --------------------------------------------------------------------------


VALID_METADATA: list[tuple[str, dict[str, Any]]] = [
    ("project", {"description": "p" * 1000, "target_quarter": "2026-Q2", "constitutional_principles": ["a", "b"]}),
    ("session", {"token_budget": 1_000, "prompts_count": 0, "yaml_frontmatter": {"schema_version": "1.0"}}),
    ("session", {"token_budget": 1_000_000, "prompts_count": 7}),
    ("task", {"estimated_hours": 0, "actual_hours": 1000, "blocked_reason": "r" * 500}),
    ("task", {"estimated_hours": 2.5, "actual_hours": 0.25, "blocked_reason": ""}),
    ("research", {"research_questions": ["why?"], "findings_summary": "f" * 2000, "references": ["https://x"]}),
]


@pytest.mark.parametrize(("item_type", "metadata"), VALID_METADATA)
async def test_known_metadata_keys_are_accepted(store: Store, item_type: str, metadata: dict[str, Any]) -> None:
    item = await create_item(store, item_type=item_type, metadata=metadata)
    stored = get_item(store, item["id"])["metadata"]
    assert {k: stored[k] for k in metadata} == metadata


INVALID_METADATA: list[tuple[str, dict[str, Any], str]] = [
    ("project", {"description": "p" * 1001}, "metadata.description"),
    ("project", {"description": 5}, "metadata.description"),
    ("project", {"target_quarter": "2026-Q5"}, "metadata.target_quarter"),
    ("project", {"target_quarter": "next year"}, "metadata.target_quarter"),
    ("project", {"constitutional_principles": "not a list"}, "metadata.constitutional_principles"),
    ("project", {"constitutional_principles": ["ok", 3]}, "metadata.constitutional_principles"),
    ("session", {"token_budget": 999}, "metadata.token_budget"),
    ("session", {"token_budget": 1_000_001}, "metadata.token_budget"),
    ("session", {"token_budget": 5000.0}, "metadata.token_budget"),
    ("session", {"token_budget": True}, "metadata.token_budget"),
    ("session", {"prompts_count": -1}, "metadata.prompts_count"),
    ("session", {"prompts_count": "3"}, "metadata.prompts_count"),
    ("session", {"yaml_frontmatter": {"title": "no version"}}, "metadata.yaml_frontmatter.schema_version"),
    ("session", {"yaml_frontmatter": "schema_version: 1"}, "metadata.yaml_frontmatter"),
    ("task", {"estimated_hours": -0.5}, "metadata.estimated_hours"),
    ("task", {"estimated_hours": 1000.01}, "metadata.estimated_hours"),
    ("task", {"actual_hours": "3"}, "metadata.actual_hours"),
    ("task", {"actual_hours": False}, "metadata.actual_hours"),
    ("task", {"blocked_reason": "r" * 501}, "metadata.blocked_reason"),
    ("research", {"research_questions": [1]}, "metadata.research_questions"),
    ("research", {"findings_summary": "f" * 2001}, "metadata.findings_summary"),
    ("research", {"references": "https://x"}, "metadata.references"),
]


@pytest.mark.parametrize(("item_type", "metadata", "field"), INVALID_METADATA)
async def test_invalid_known_metadata_is_rejected_naming_the_key(
    store: Store, item_type: str, metadata: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, item_type=item_type, metadata=metadata)
    assert fields_of(exc) == [field]
    assert list_items(store)["total_count"] == 0


async def test_every_bad_metadata_key_is_named_at_once(store: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, item_type="task", metadata={"estimated_hours": -1, "blocked_reason": 1})
    assert sorted(fields_of(exc)) == ["metadata.blocked_reason", "metadata.estimated_hours"]


async def test_project_target_quarter_is_normalised(store: Store) -> None:
    item = await create_item(store, item_type="project", metadata={"target_quarter": "Q3 2027"})
    assert get_item(store, item["id"])["metadata"]["target_quarter"] == "2027-Q3"


@pytest.mark.parametrize("item_type", m.ITEM_TYPES)
async def test_unknown_metadata_keys_are_kept_and_returned(store: Store, item_type: str) -> None:
    extra = {"custom_key": {"nested": [1, 2, {"deep": None}]}, "another": "value"}
    item = await create_item(store, item_type=item_type, metadata=extra)
    assert {k: get_item(store, item["id"])["metadata"][k] for k in extra} == extra
    assert {k: query_item(store, item["id"])["metadata"][k] for k in extra} == extra


async def test_keys_known_for_another_type_are_not_validated(store: Store) -> None:
    # token_budget is a session key: on a task it is just an unknown key, kept as is.
    item = await create_item(store, item_type="task", metadata={"token_budget": 1})
    assert get_item(store, item["id"])["metadata"] == {"token_budget": 1}


async def test_session_defaults_come_from_the_configuration(store: Store) -> None:
    first = await create_item(store, item_type="session")
    assert get_item(store, first["id"])["metadata"] == {"token_budget": 200_000, "prompts_count": 0}
    config = store.read(configuration.get)
    await store.write(
        configuration.update,
        WriteContext(actor="t"),
        m.parse_args(m.UpdateConfigurationArgs, {"version": config["version"], "default_token_budget": 50_000}),
    )
    second = await create_item(store, item_type="session")
    assert get_item(store, second["id"])["metadata"] == {"token_budget": 50_000, "prompts_count": 0}


async def test_session_explicit_metadata_overrides_defaults(store: Store) -> None:
    item = await create_item(store, item_type="session", metadata={"token_budget": 3_000, "prompts_count": 4})
    assert get_item(store, item["id"])["metadata"] == {"token_budget": 3_000, "prompts_count": 4}


@pytest.mark.parametrize("item_type", ["project", "task", "research"])
async def test_non_session_items_get_no_metadata_defaults(store: Store, item_type: str) -> None:
    item = await create_item(store, item_type=item_type)
    assert get_item(store, item["id"])["metadata"] == {}


async def test_yaml_frontmatter_with_schema_version_is_kept_whole(store: Store) -> None:
    fm = {"schema_version": 2, "title": "Session 1", "tags": ["a"]}
    item = await create_item(store, item_type="session", metadata={"yaml_frontmatter": fm})
    assert get_item(store, item["id"])["metadata"]["yaml_frontmatter"] == fm


# --- git links ---------------------------------------------------------------------------------


@pytest.mark.parametrize("commit", ["ABCDEF1", "0123456789ABCDEFabcdef0123456789abcdef01"])
async def test_commit_hash_is_stored_lowercase(store: Store, commit: str) -> None:
    item = await create_item(store, commit_hash=commit, branch_name="feature/x", pr_number=1)
    row = get_item(store, item["id"])
    assert row["commit_hash"] == commit.lower()
    assert row["branch_name"] == "feature/x"
    assert row["pr_number"] == 1


@pytest.mark.parametrize("commit", ["abcdef", "a" * 41, "abcdefg", "12345 78"])
async def test_commit_hash_must_be_7_to_40_hex(store: Store, commit: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, commit_hash=commit)
    assert fields_of(exc) == ["commit_hash"]


async def test_commit_hash_is_validated_on_update_too(store: Store) -> None:
    item = await create_item(store)
    with pytest.raises(ValidationError) as exc:
        await update_item(store, item["id"], commit_hash="xyz1234")
    assert fields_of(exc) == ["commit_hash"]
    updated = await update_item(store, item["id"], commit_hash="DEADBEEF")
    assert updated["commit_hash"] == "deadbeef"


@pytest.mark.parametrize("pr", [0, -3])
async def test_pr_number_must_be_at_least_1(store: Store, pr: int) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_item(store, pr_number=pr)
    assert fields_of(exc) == ["pr_number"]


# --- updates -----------------------------------------------------------------------------------


async def test_update_changes_fields_and_bumps_version(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore, actor="alice")
    clock.advance(minutes=5)
    updated = await update_item(
        cstore, item["id"], actor="bob", title=" New title ", status="blocked", priority="critical", pr_number=9
    )
    assert updated["version"] == 2
    assert updated["updated_by"] == "bob"
    assert updated["created_by"] == "alice"
    assert updated["updated_at"] == clock() != updated["created_at"]
    row = get_item(cstore, item["id"])
    assert (row["title"], row["status"], row["priority"], row["pr_number"]) == ("New title", "blocked", "critical", 9)


async def test_no_op_update_does_not_bump_the_version(store: Store) -> None:
    item = await create_item(store, title="same", priority="high", metadata={"k": 1})
    before = history_count(store, item["id"])
    result = await update_item(store, item["id"], title="same", priority="high", metadata={"k": 1})
    assert result["version"] == 1
    assert get_item(store, item["id"])["version"] == 1
    assert history_count(store, item["id"]) == before


async def test_metadata_update_merges_and_null_removes_a_key(store: Store) -> None:
    item = await create_item(store, item_type="task", metadata={"estimated_hours": 3, "blocked_reason": "x", "k": 1})
    updated = await update_item(store, item["id"], metadata={"actual_hours": 2, "blocked_reason": None, "new": True})
    assert updated["metadata"] == {"estimated_hours": 3, "actual_hours": 2, "k": 1, "new": True}
    assert get_item(store, item["id"])["metadata"] == updated["metadata"]


async def test_metadata_merge_is_revalidated(store: Store) -> None:
    item = await create_item(store, item_type="session")
    with pytest.raises(ValidationError) as exc:
        await update_item(store, item["id"], metadata={"token_budget": 10})
    assert fields_of(exc) == ["metadata.token_budget"]
    with pytest.raises(ValidationError) as exc:
        await update_item(store, item["id"], metadata={"yaml_frontmatter": {"x": 1}})
    assert fields_of(exc) == ["metadata.yaml_frontmatter.schema_version"]
    row = get_item(store, item["id"])
    assert row["version"] == 1
    assert row["metadata"] == {"token_budget": 200_000, "prompts_count": 0}


@pytest.mark.parametrize("field", ["title", "status", "priority"])
async def test_required_fields_cannot_be_set_null(store: Store, field: str) -> None:
    item = await create_item(store)
    with pytest.raises(ValidationError) as exc:
        await update_item(store, item["id"], **{field: None})
    assert fields_of(exc) == [field]
    assert get_item(store, item["id"])["version"] == 1


async def test_optional_fields_can_be_cleared_with_null(store: Store) -> None:
    item = await create_item(store, description="d", branch_name="b", commit_hash="abcdef1", pr_number=3)
    updated = await update_item(store, item["id"], description=None, branch_name=None, commit_hash=None, pr_number=None)
    assert updated["version"] == 2
    row = get_item(store, item["id"])
    assert [row[f] for f in ("description", "branch_name", "commit_hash", "pr_number")] == [None] * 4


async def test_update_of_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as exc:
        await update_item(store, "abcdef12", version=1, title="x")
    assert exc.value.details["entity"] == "work_item"


async def test_update_accepts_an_id_prefix(store: Store) -> None:
    item = await create_item(store)
    updated = await update_item(store, item["id"][:8], version=1, title="by prefix")
    assert updated["id"] == item["id"]
    assert get_item(store, item["id"])["title"] == "by prefix"


# --- soft delete -------------------------------------------------------------------------------


async def test_soft_delete_and_restore(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    clock.advance(seconds=1)
    deleted = await update_item(cstore, item["id"], deleted=True)
    assert deleted["deleted_at"] == clock()
    assert deleted["version"] == 2
    assert item["id"] not in list_ids(cstore)
    assert item["id"] in list_ids(cstore, include_deleted=True)
    assert list_items(cstore)["total_count"] == 0
    # Never a hard delete: the row is still there and can be read directly.
    assert query_item(cstore, item["id"])["deleted_at"] == clock()

    clock.advance(seconds=1)
    again = await update_item(cstore, item["id"], deleted=True)
    assert again["version"] == 2, "deleting a deleted item is a no-op"
    assert again["deleted_at"] == deleted["deleted_at"]

    restored = await update_item(cstore, item["id"], deleted=False)
    assert restored["deleted_at"] is None
    assert restored["version"] == 3
    assert item["id"] in list_ids(cstore)


async def test_deleted_items_are_marked_in_include_deleted_listing(store: Store) -> None:
    item = await create_item(store)
    await update_item(store, item["id"], deleted=True)
    rows = list_items(store, include_deleted=True)["items"]
    assert rows[0]["deleted_at"] is not None


# --- archived items are read-only ----------------------------------------------------------------


async def test_archived_items_are_read_only(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore)
    clock.advance(days=400)
    result = await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
    assert result["archived"] == 1
    archived = get_item(cstore, item["id"])
    for change in ({"title": "x"}, {"deleted": True}, {"status": "completed"}, {"metadata": {"a": 1}}):
        with pytest.raises(ValidationError) as exc:
            await update_item(cstore, item["id"], **change)
        assert fields_of(exc) == ["id"]
        assert "archived" in exc.value.message
    assert get_item(cstore, item["id"]) == archived


# --- listing -------------------------------------------------------------------------------------


async def test_list_filters_text_and_pagination(cstore: Store, clock: FakeClock) -> None:
    ids = []
    for i, (item_type, priority) in enumerate(
        [("task", "high"), ("task", "low"), ("research", "high"), ("project", "medium"), ("task", "high")]
    ):
        clock.advance(seconds=1)
        item = await create_item(cstore, item_type=item_type, priority=priority, title=f"item {i}", description=f"d{i}")
        ids.append(item["id"])
    assert list_ids(cstore, item_type="task") == {ids[0], ids[1], ids[4]}
    assert list_ids(cstore, priority="high") == {ids[0], ids[2], ids[4]}
    assert list_ids(cstore, item_type="task", priority="high") == {ids[0], ids[4]}
    assert list_ids(cstore, text="item 3") == {ids[3]}
    assert list_ids(cstore, text="d2") == {ids[2]}
    assert list_ids(cstore, text="%") == set()

    page1 = list_items(cstore, limit=2)
    assert [r["id"] for r in page1["items"]] == ids[:2]
    assert page1["total_count"] == 5
    page2 = list_items(cstore, limit=2, cursor=page1["next_cursor"])
    assert [r["id"] for r in page2["items"]] == ids[2:4]
    page3 = list_items(cstore, limit=2, cursor=page2["next_cursor"])
    assert [r["id"] for r in page3["items"]] == ids[4:]
    assert page3["next_cursor"] is None


async def test_a_bad_cursor_is_a_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        list_items(store, cursor="not-a-cursor")
    assert fields_of(exc) == ["cursor"]
