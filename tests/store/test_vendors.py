"""Vendors (SPEC §2.3): names, case-insensitive uniqueness, defaults, metadata merge."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import create_vendor, history_count, update_vendor

from statusd import models as m
from statusd.errors import DuplicateError, NotFoundError, ValidationError, VersionMismatchError
from statusd.store import Store, vendors

DEFAULT_METADATA = {
    "format_support": {"excel": False, "csv": False, "pdf": False, "ocr": False},
    "test_results": {"passing": 0, "total": 0, "skipped": 0},
    "extractor_version": "0.0.0",
    "manifest_compliant": False,
}


def query(store: Store, **kw: Any) -> dict[str, Any]:
    return store.read(vendors.query, m.parse_args(m.QueryVendorArgs, kw))


async def test_new_vendor_defaults(store: Store) -> None:
    vendor = await create_vendor(store, "Acme", actor="alice")
    assert vendor["status"] == "broken"
    assert vendor["operational"] is False
    assert vendor["metadata"] == DEFAULT_METADATA
    assert (vendor["version"], vendor["created_by"]) == (1, "alice")
    assert query(store, name="Acme")["metadata"] == DEFAULT_METADATA


async def test_create_with_status_and_partial_metadata(store: Store) -> None:
    vendor = await create_vendor(
        store, "Beta", status="operational", metadata={"format_support": {"pdf": True}, "vendor_note": "kept"}
    )
    assert vendor["operational"] is True
    assert vendor["metadata"]["format_support"] == {"excel": False, "csv": False, "pdf": True, "ocr": False}
    assert vendor["metadata"]["vendor_note"] == "kept"
    assert vendor["metadata"]["extractor_version"] == "0.0.0"


@pytest.mark.parametrize("name", ["a", "Vendor_1 - EU", "x" * 100, "  trimmed  "])
async def test_valid_names(store: Store, name: str) -> None:
    vendor = await create_vendor(store, name)
    assert vendor["name"] == name.strip()


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "acme!", "a/b", "naïve", "tab\tname"])
async def test_invalid_names(store: Store, name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_vendor(store, name)
    assert exc.value.fields[0]["field"] == "name"


@pytest.mark.parametrize("other", ["acme", "ACME", " AcMe "])
async def test_names_are_unique_case_insensitively(store: Store, other: str) -> None:
    await create_vendor(store, "Acme")
    with pytest.raises(DuplicateError) as exc:
        await create_vendor(store, other)
    assert exc.value.code == "duplicate"
    assert exc.value.details["field"] == "name"
    assert len(query(store)["vendors"]) == 1


async def test_lookups_are_case_insensitive(store: Store) -> None:
    created = await create_vendor(store, "Acme")
    assert query(store, name="aCME")["id"] == created["id"]
    updated = await update_vendor(store, "ACME", 1, status="operational")
    assert updated["id"] == created["id"]
    assert updated["name"] == "Acme", "the stored spelling is kept"


async def test_unknown_vendor_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as exc:
        query(store, name="ghost")
    assert exc.value.details["entity"] == "vendor"
    with pytest.raises(NotFoundError):
        await update_vendor(store, "ghost", 1, status="operational")


async def test_list_and_status_filter(store: Store) -> None:
    await create_vendor(store, "beta", status="operational")
    await create_vendor(store, "Alpha")
    await create_vendor(store, "gamma", status="operational")
    assert [v["name"] for v in query(store)["vendors"]] == ["Alpha", "beta", "gamma"]
    listed = query(store, status="operational")["vendors"]
    assert [v["name"] for v in listed] == ["beta", "gamma"]
    assert all(v["operational"] is True for v in listed)
    assert query(store, name="beta", status="operational")["name"] == "beta"
    with pytest.raises(NotFoundError):
        query(store, name="Alpha", status="operational")


async def test_status_update_sets_operational(store: Store) -> None:
    await create_vendor(store, "Acme")
    up = await update_vendor(store, "Acme", 1, status="operational")
    assert (up["status"], up["operational"], up["version"]) == ("operational", True, 2)
    down = await update_vendor(store, "Acme", 2, status="broken")
    assert (down["status"], down["operational"], down["version"]) == ("broken", False, 3)


async def test_partial_metadata_update_merges(store: Store) -> None:
    await create_vendor(store, "Acme", metadata={"format_support": {"csv": True}, "custom": 1})
    updated = await update_vendor(
        store, "Acme", 1, metadata={"format_support": {"pdf": True}, "test_results": {"total": 10, "passing": 7}}
    )
    md = updated["metadata"]
    assert md["format_support"] == {"excel": False, "csv": True, "pdf": True, "ocr": False}
    assert md["test_results"] == {"passing": 7, "total": 10, "skipped": 0}
    assert md["custom"] == 1
    assert md["extractor_version"] == "0.0.0"
    again = await update_vendor(store, "Acme", 2, metadata={"test_results": {"skipped": 3}, "extractor_version": "2.1"})
    assert again["metadata"]["test_results"] == {"passing": 7, "total": 10, "skipped": 3}
    assert again["metadata"]["extractor_version"] == "2.1"
    assert query(store, name="acme")["metadata"] == again["metadata"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"test_results": {"passing": 5, "skipped": 1}}, "metadata.test_results"),  # 6 > total 5
        ({"test_results": {"passing": -1}}, "metadata.test_results.passing"),
        ({"test_results": {"total": 1.5}}, "metadata.test_results.total"),
        ({"test_results": {"failing": 1}}, "metadata.test_results"),
        ({"test_results": "all green"}, "metadata.test_results"),
        ({"format_support": {"pdf": "yes"}}, "metadata.format_support.pdf"),
        ({"format_support": {"docx": True}}, "metadata.format_support"),
        ({"extractor_version": ""}, "metadata.extractor_version"),
        ({"extractor_version": "v" * 51}, "metadata.extractor_version"),
        ({"extractor_version": 2}, "metadata.extractor_version"),
        ({"manifest_compliant": "true"}, "metadata.manifest_compliant"),
    ],
)
async def test_merged_metadata_is_revalidated(store: Store, patch: dict[str, Any], field: str) -> None:
    await create_vendor(store, "Acme", metadata={"test_results": {"total": 5}})
    before = query(store, name="Acme")
    with pytest.raises(ValidationError) as exc:
        await update_vendor(store, "Acme", 1, metadata=patch)
    assert [f["field"] for f in exc.value.fields] == [field]
    assert query(store, name="Acme") == before


async def test_passing_plus_skipped_may_equal_total(store: Store) -> None:
    vendor = await create_vendor(store, "Acme", metadata={"test_results": {"passing": 7, "skipped": 3, "total": 10}})
    assert vendor["metadata"]["test_results"] == {"passing": 7, "skipped": 3, "total": 10}


async def test_invalid_metadata_on_create_is_rejected(store: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_vendor(store, "Acme", metadata={"test_results": {"passing": 1}, "manifest_compliant": 1})
    assert sorted(f["field"] for f in exc.value.fields) == ["metadata.manifest_compliant", "metadata.test_results"]
    assert query(store)["vendors"] == []


async def test_stale_version_is_a_version_mismatch(store: Store) -> None:
    await create_vendor(store, "Acme")
    await update_vendor(store, "Acme", 1, actor="alice", status="operational")
    with pytest.raises(VersionMismatchError) as exc:
        await update_vendor(store, "Acme", 1, actor="bob", status="broken")
    assert (exc.value.expected_version, exc.value.actual_version, exc.value.last_updated_by) == (1, 2, "alice")
    assert "version mismatch" in exc.value.message
    assert query(store, name="Acme")["status"] == "operational"


async def test_no_op_update_keeps_the_version(store: Store) -> None:
    vendor = await create_vendor(store, "Acme", metadata={"format_support": {"csv": True}})
    count = history_count(store, vendor["id"])
    same = await update_vendor(store, "Acme", 1, status="broken", metadata={"format_support": {"csv": True}})
    assert same["version"] == 1
    assert history_count(store, vendor["id"]) == count
