"""Metadata rules (statusd.metadata): every bad field is named at once, with its exact message."""

from __future__ import annotations

from typing import Any

import pytest

from statusd import models as m
from statusd.errors import ValidationError


def _fields(call: Any, *args: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as exc:
        call(*args)
    return exc.value.fields


def test_session_metadata_names_every_bad_key_with_its_message() -> None:
    bad = {"token_budget": 5, "prompts_count": -1, "yaml_frontmatter": {"title": "x"}, "mine": object}
    assert _fields(m.validate_item_metadata, "session", bad) == [
        {"field": "metadata.token_budget", "message": "must be between 1000 and 1000000"},
        {"field": "metadata.prompts_count", "message": "must be ≥ 0"},
        {"field": "metadata.yaml_frontmatter.schema_version", "message": "is required in yaml_frontmatter"},
    ]


def test_project_and_task_metadata_name_every_bad_key() -> None:
    project = {"description": "d" * 1001, "target_quarter": "2026-Q5", "constitutional_principles": "p"}
    assert _fields(m.validate_item_metadata, "project", project) == [
        {"field": "metadata.description", "message": "must be 0-1000 characters"},
        {"field": "metadata.target_quarter", "message": "must be a quarter like '2026-Q1' or 'Q1 2026', got '2026-Q5'"},
        {"field": "metadata.constitutional_principles", "message": "must be a list of strings"},
    ]
    task = {"estimated_hours": True, "actual_hours": 1001, "blocked_reason": 7}
    assert _fields(m.validate_item_metadata, "task", task) == [
        {"field": "metadata.estimated_hours", "message": "must be a number"},
        {"field": "metadata.actual_hours", "message": "must be between 0 and 1000"},
        {"field": "metadata.blocked_reason", "message": "must be a string"},
    ]


def test_item_metadata_normalises_known_keys_and_returns_unknown_ones_in_order() -> None:
    given = {"zeta": [1], "target_quarter": " q3 2027 ", "alpha": None, "constitutional_principles": ("a",)}
    with pytest.raises(ValidationError):  # a tuple is not a JSON list
        m.validate_item_metadata("project", given)
    given["constitutional_principles"] = ["a"]
    out = m.validate_item_metadata("project", given)
    assert list(out) == ["zeta", "target_quarter", "alpha", "constitutional_principles"]
    assert out == {"zeta": [1], "target_quarter": "2027-Q3", "alpha": None, "constitutional_principles": ["a"]}
    assert out["constitutional_principles"] is not given["constitutional_principles"]
    assert m.validate_item_metadata("task", {"estimated_hours": 3}) == {"estimated_hours": 3}  # an int stays an int
    assert m.validate_item_metadata("unknown-type", {"x": 1}) == {"x": 1}


def test_vendor_metadata_names_every_bad_key_including_nested_ones() -> None:
    bad = {
        "format_support": {"pdf": "yes", "ocr": 1},
        "test_results": {"passing": -1, "total": "2"},
        "extractor_version": "",
        "manifest_compliant": None,
        "kept": 1,
    }
    assert _fields(m.validate_vendor_metadata, bad) == [
        {"field": "metadata.format_support.pdf", "message": "must be true or false"},
        {"field": "metadata.format_support.ocr", "message": "must be true or false"},
        {"field": "metadata.test_results.passing", "message": "must be ≥ 0"},
        {"field": "metadata.test_results.total", "message": "must be an integer"},
        {"field": "metadata.extractor_version", "message": "must be 1-50 characters"},
        {"field": "metadata.manifest_compliant", "message": "must be true or false"},
    ]


def test_vendor_metadata_unknown_nested_keys_are_one_error_per_object() -> None:
    bad = {**m.vendor_metadata_defaults(), "format_support": {"docx": True}, "test_results": {"failed": 1}}
    assert _fields(m.validate_vendor_metadata, bad) == [
        {
            "field": "metadata.format_support",
            "message": "unknown format(s) ['docx']; known: ['excel', 'csv', 'pdf', 'ocr']",
        },
        {"field": "metadata.test_results", "message": "unknown key(s) ['failed']"},
    ]
    wrong = {**m.vendor_metadata_defaults(), "format_support": [], "test_results": None}
    assert _fields(m.validate_vendor_metadata, wrong) == [
        {"field": "metadata.format_support", "message": "must be an object of booleans"},
        {"field": "metadata.test_results", "message": "must be an object {passing, total, skipped}"},
    ]


def test_vendor_metadata_keeps_unknown_top_level_keys() -> None:
    out = m.validate_vendor_metadata({**m.vendor_metadata_defaults(), "notes": {"a": [1]}})
    assert out["notes"] == {"a": [1]}
    assert out["test_results"] == {"passing": 0, "total": 0, "skipped": 0}


def test_deployment_metadata_names_every_bad_key_including_summary_counts() -> None:
    bad = {
        "pr_number": 0,
        "pr_title": "   ",
        "commit_hash": "xyz",
        "test_summary": {"unit": -1, "e2e": 1.5, "ok": 3},
        "constitutional_compliance": "yes",
        "summary": 5,
    }
    assert _fields(m.validate_deployment_metadata, bad) == [
        {"field": "metadata.pr_number", "message": "must be ≥ 1"},
        {"field": "metadata.pr_title", "message": "must be 1-200 characters"},
        {"field": "metadata.commit_hash", "message": "must be 7-40 hexadecimal characters"},
        {"field": "metadata.test_summary.unit", "message": "must be ≥ 0"},
        {"field": "metadata.test_summary.e2e", "message": "must be an integer"},
        {"field": "metadata.constitutional_compliance", "message": "must be true or false"},
        {"field": "metadata.summary", "message": "must be a string"},
    ]
    assert _fields(m.validate_deployment_metadata, {**bad, "test_summary": None})[3] == {
        "field": "metadata.test_summary",
        "message": "is required",
    }


def test_deployment_metadata_normalises_and_keeps_the_rest() -> None:
    given = {
        "pr_number": 7,
        "pr_title": "  Ship it ",
        "commit_hash": "ABCDEF12",
        "test_summary": {"unit": 2},
        "constitutional_compliance": True,
        "reviewer": "kim",
    }
    out = m.validate_deployment_metadata(given)
    assert out == {**given, "pr_title": "Ship it", "commit_hash": "abcdef12", "commit_hash_abbreviated": True}
    assert given["pr_title"] == "  Ship it "


def test_keys_named_like_pydantic_internals_are_kept_as_data() -> None:
    hostile = {"model_config": 1, "__dict__": 2, "__pydantic_extra__": 3, "model_fields_set": 4, "_x": 5, "": 6}
    for item_type in ("project", "session", "task", "research"):
        assert m.validate_item_metadata(item_type, hostile) == hostile
    vendor = {**m.vendor_metadata_defaults(), **hostile}
    assert m.validate_vendor_metadata(vendor) == vendor
    deployment = {
        "pr_number": 1,
        "pr_title": "t",
        "commit_hash": "f" * 40,
        "test_summary": {},
        "constitutional_compliance": True,
        **hostile,
    }
    assert m.validate_deployment_metadata(deployment) == deployment
