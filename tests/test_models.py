"""Domain rules and tool-argument models (SPEC §2, §4.1), without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from statusd import models as m
from statusd.errors import ValidationError


def all_args_models() -> list[type[m.Args]]:
    found: list[type[m.Args]] = []
    todo = [m.Args]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__ == m.__name__ and sub not in found:
                found.append(sub)
                todo.append(sub)
    return sorted(found, key=lambda c: c.__name__)


ARGS_MODELS = all_args_models()


def test_every_tool_argument_model_is_found() -> None:
    names = {c.__name__ for c in ARGS_MODELS}
    assert {"CreateWorkItemArgs", "UpdateWorkItemArgs", "RecordDeploymentArgs", "NoArgs", "QueryHistoryArgs"} <= names
    assert len(ARGS_MODELS) >= 20


@pytest.mark.parametrize("model", ARGS_MODELS, ids=lambda c: c.__name__)
def test_unknown_arguments_are_rejected_naming_the_field(model: type[m.Args]) -> None:
    with pytest.raises(ValidationError) as exc:
        m.parse_args(model, {"no_such_argument": 1, "another_typo": "x"})
    unknown = {f["field"]: f for f in exc.value.fields if f["type"] == "extra_forbidden"}
    assert set(unknown) == {"no_such_argument", "another_typo"}
    assert unknown["no_such_argument"]["message"] == "unknown argument"
    assert exc.value.code == "validation_error"
    assert "no_such_argument: unknown argument" in exc.value.message
    assert exc.value.to_payload()["error"]["details"]["fields"] == exc.value.fields


@pytest.mark.parametrize("model", ARGS_MODELS, ids=lambda c: c.__name__)
def test_actor_is_accepted_everywhere_and_bounded(model: type[m.Args]) -> None:
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    with pytest.raises(ValidationError) as exc:
        m.parse_args(model, {"actor": "x" * 101})
    assert "actor" in {f["field"] for f in exc.value.fields}
    if not required:
        assert m.parse_args(model, {"actor": "claude"}).actor == "claude"


def test_missing_required_arguments_are_named() -> None:
    with pytest.raises(ValidationError) as exc:
        m.parse_args(m.CreateWorkItemArgs, {})
    assert {f["field"] for f in exc.value.fields} == {"item_type", "title"}
    assert all(f["type"] == "missing" for f in exc.value.fields)


@pytest.mark.parametrize(
    ("model", "args", "field"),
    [
        (m.CreateWorkItemArgs, {"item_type": "task", "title": "t", "pr_number": "5"}, "pr_number"),
        (m.CreateWorkItemArgs, {"item_type": "task", "title": 5}, "title"),
        (m.CreateWorkItemArgs, {"item_type": "task", "title": "t", "metadata": []}, "metadata"),
        (m.UpdateWorkItemArgs, {"id": "abcdef", "version": "1"}, "version"),
        (m.UpdateWorkItemArgs, {"id": "abcdef", "version": 0}, "version"),
        (m.UpdateWorkItemArgs, {"id": "abc", "version": 1}, "id"),
        (m.UpdateWorkItemArgs, {"id": "abcdef", "version": 1, "deleted": "yes"}, "deleted"),
        (m.ListWorkItemsArgs, {"limit": 501}, "limit"),
        (m.ListWorkItemsArgs, {"limit": 0}, "limit"),
        (m.ListWorkItemsArgs, {"parent_id": "top"}, "parent_id"),
        (m.DependencyArgs, {"work_item_id": "abcdef", "depends_on_id": "abcdef1", "dependency_type": "x"},
         "dependency_type"),
        (m.RecordDeploymentArgs, {"metadata": {}, "vendor_ids": "abcdef"}, "vendor_ids"),
        (m.GenerateStatusArgs, {"output_format": "html"}, "output_format"),
        (m.QueryHistoryArgs, {"id": "abcdef", "limit": 1001}, "limit"),
    ],
)  # fmt: skip
def test_arguments_are_strictly_typed(model: type[m.Args], args: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        m.parse_args(model, args)
    assert field in {f["field"].split(".")[0] for f in exc.value.fields}


def test_parse_args_defaults() -> None:
    a = m.parse_args(m.CreateWorkItemArgs, {"item_type": "task", "title": "  t  "})
    assert isinstance(a, m.CreateWorkItemArgs)
    assert (a.title, a.status, a.priority, a.metadata) == ("t", "active", "medium", None)
    lst = m.parse_args(m.ListWorkItemsArgs, None)
    assert isinstance(lst, m.ListWorkItemsArgs)
    assert (lst.limit, lst.include_deleted, lst.ready) == (50, False, None)
    c = m.parse_args(m.ClaimWorkItemArgs, {})
    assert isinstance(c, m.ClaimWorkItemArgs)
    assert c.lease_minutes == 30


def test_update_args_remember_which_fields_were_sent() -> None:
    a = m.parse_args(m.UpdateWorkItemArgs, {"id": "abcdef", "version": 1, "description": None})
    assert a.model_fields_set == {"id", "version", "description"}


# --- quarters, hashes, ids, timestamps -----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [("2026-Q1", "2026-Q1"), ("2026-q4", "2026-Q4"), ("Q2 2027", "2027-Q2"), ("q3  2030", "2030-Q3"),
     (" 2026 - Q2 ", "2026-Q2")],
)  # fmt: skip
def test_normalize_quarter(given: str, stored: str) -> None:
    assert m.normalize_quarter(given, "q") == stored
    assert m.human_quarter(stored) == f"{stored[5:]} {stored[:4]}"


@pytest.mark.parametrize("bad", ["2026-Q0", "2026-Q5", "Q5 2026", "26-Q1", "2026 Q1", "", None, 20261])
def test_normalize_quarter_rejects(bad: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        m.normalize_quarter(bad, "target_quarter")
    assert exc.value.fields[0]["field"] == "target_quarter"


def test_human_quarter_of_nothing() -> None:
    assert m.human_quarter(None) is None
    assert m.human_quarter("") is None


@pytest.mark.parametrize("value", ["abcdef0", "A" * 40, "0123456789abcdefABCDEF"])
def test_commit_hash_accepted_and_lowercased(value: str) -> None:
    assert m.normalize_commit_hash(value, "c") == value.lower()


@pytest.mark.parametrize("value", ["abcdef", "a" * 41, "abcdefz", " abcdef0", 1234567, None])
def test_commit_hash_rejected(value: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        m.normalize_commit_hash(value, "commit_hash")
    assert exc.value.fields[0]["field"] == "commit_hash"


def test_commit_hash_min_length_can_be_raised() -> None:
    with pytest.raises(ValidationError):
        m.normalize_commit_hash("a" * 39, "c", min_len=40)
    assert m.normalize_commit_hash("a" * 40, "c", min_len=40) == "a" * 40


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("ABCDEF", "abcdef"),
        (" abcdef12 ", "abcdef12"),
        ("abcd-ef", "abcd-ef"),
        ("3BD50F8C-52AA-4FEC-B615-A100E1763254", None),
    ],
)
def test_check_id_text_accepts(text: str, out: str | None) -> None:
    assert m.check_id_text(text, "id") == (out or text.strip().lower())


@pytest.mark.parametrize("text", ["abcde", "abc-de", "------", "ghijkl", "a" * 37, ""])
def test_check_id_text_rejects(text: str) -> None:
    with pytest.raises(ValidationError) as exc:
        m.check_id_text(text, "parent_id")
    assert exc.value.fields[0]["field"] == "parent_id"


def test_new_ids_are_uuid4() -> None:
    ident = m.new_id()
    assert len(ident) == 36
    assert ident[14] == "4"
    assert ident != m.new_id()


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000Z"),
        ("2026-01-02T03:04:05", "2026-01-02T03:04:05.000000Z"),
        ("2026-01-02T05:04:05.5+02:00", "2026-01-02T03:04:05.500000Z"),
        ("2026-01-02", "2026-01-02T00:00:00.000000Z"),
    ],
)
def test_parse_timestamp(text: str, out: str) -> None:
    assert m.parse_timestamp(text, "ts") == out


@pytest.mark.parametrize("bad", ["yesterday", "", 1700000000, None])
def test_parse_timestamp_rejects(bad: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        m.parse_timestamp(bad, "since")
    assert exc.value.fields[0]["field"] == "since"


def test_iso_is_utc_with_microseconds_and_sorts() -> None:
    east = timezone(timedelta(hours=5))
    assert m.iso(datetime(2026, 1, 1, 5, 0, tzinfo=east)) == "2026-01-01T00:00:00.000000Z"
    assert m.iso(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000Z"
    earlier, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert m.iso(earlier) < m.iso(later)
    assert m.now_iso().endswith("Z")


# --- metadata rules ------------------------------------------------------------------------------


def test_item_metadata_keeps_unknown_keys_and_does_not_mutate_input() -> None:
    given = {"target_quarter": "Q1 2026", "mine": {"x": 1}}
    out = m.validate_item_metadata("project", given)
    assert out == {"target_quarter": "2026-Q1", "mine": {"x": 1}}
    assert given["target_quarter"] == "Q1 2026"


def test_item_metadata_none_values_are_not_checked() -> None:
    assert m.validate_item_metadata("session", {"token_budget": None}) == {"token_budget": None}


def test_item_metadata_names_every_bad_key() -> None:
    with pytest.raises(ValidationError) as exc:
        m.validate_item_metadata("research", {"research_questions": "q", "references": [1], "findings_summary": 2})
    assert sorted(f["field"] for f in exc.value.fields) == [
        "metadata.findings_summary",
        "metadata.references",
        "metadata.research_questions",
    ]


def test_item_metadata_lists_are_bounded() -> None:
    with pytest.raises(ValidationError):
        m.validate_item_metadata("project", {"constitutional_principles": ["p"] * 1001})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_task_hours_must_be_finite(bad: float) -> None:
    with pytest.raises(ValidationError) as exc:
        m.validate_item_metadata("task", {"estimated_hours": bad})
    assert exc.value.fields[0]["field"] == "metadata.estimated_hours"


def test_item_metadata_defaults() -> None:
    assert m.item_metadata_defaults("session", 12_345) == {"token_budget": 12_345, "prompts_count": 0}
    assert all(m.item_metadata_defaults(t, 12_345) == {} for t in ("project", "task", "research"))


def test_vendor_metadata_merge_is_one_level_deep_and_pure() -> None:
    current = m.vendor_metadata_defaults()
    merged = m.merge_vendor_metadata(current, {"format_support": {"csv": True}, "extractor_version": "1.2"})
    assert merged["format_support"] == {"excel": False, "csv": True, "pdf": False, "ocr": False}
    assert merged["extractor_version"] == "1.2"
    assert current == m.vendor_metadata_defaults()


def test_vendor_metadata_fills_missing_formats_and_counts() -> None:
    out = m.validate_vendor_metadata(
        {
            "format_support": {"ocr": True},
            "test_results": {"total": 2},
            "extractor_version": "1",
            "manifest_compliant": True,
        }
    )
    assert out["format_support"] == {"excel": False, "csv": False, "pdf": False, "ocr": True}
    assert out["test_results"] == {"passing": 0, "total": 2, "skipped": 0}


def test_vendor_metadata_requires_the_documented_shape() -> None:
    with pytest.raises(ValidationError) as exc:
        m.validate_vendor_metadata({})
    assert sorted(f["field"] for f in exc.value.fields) == [
        "metadata.extractor_version",
        "metadata.format_support",
        "metadata.manifest_compliant",
        "metadata.test_results",
    ]


def test_vendor_test_results_detail_names_the_counts() -> None:
    md = m.merge_vendor_metadata(
        m.vendor_metadata_defaults(), {"test_results": {"passing": 3, "skipped": 2, "total": 4}}
    )
    with pytest.raises(ValidationError) as exc:
        m.validate_vendor_metadata(md)
    assert exc.value.fields[0] == {
        "field": "metadata.test_results",
        "message": "passing + skipped must not exceed total",
        "passing": 3,
        "total": 4,
        "skipped": 2,
    }


@pytest.mark.parametrize(("name", "ok"), [("Acme Corp_2-EU", True), (" x ", True), ("", False), ("a.b", False)])
def test_check_vendor_name(name: str, ok: bool) -> None:
    if ok:
        assert m.check_vendor_name(name) == name.strip()
    else:
        with pytest.raises(ValidationError):
            m.check_vendor_name(name)


def test_deployment_metadata_flags_abbreviated_hashes() -> None:
    base = {"pr_number": 1, "pr_title": "t", "test_summary": {}, "constitutional_compliance": False}
    short = m.validate_deployment_metadata({**base, "commit_hash": "ABCDEF1"})
    assert (short["commit_hash"], short["commit_hash_abbreviated"]) == ("abcdef1", True)
    full = m.validate_deployment_metadata({**base, "commit_hash": "f" * 40, "commit_hash_abbreviated": True})
    assert "commit_hash_abbreviated" not in full


def test_deployment_metadata_names_every_missing_key() -> None:
    with pytest.raises(ValidationError) as exc:
        m.validate_deployment_metadata({"extra": 1})
    assert sorted(f["field"] for f in exc.value.fields) == [
        "metadata.commit_hash",
        "metadata.constitutional_compliance",
        "metadata.pr_number",
        "metadata.pr_title",
        "metadata.test_summary",
    ]
