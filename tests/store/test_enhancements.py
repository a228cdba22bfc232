"""Future enhancements (SPEC §2.5): quarters, filters, versioned updates, depends_on."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import create_enhancement, update_enhancement

from statusd import models as m
from statusd.errors import CycleDetectedError, NotFoundError, ValidationError, VersionMismatchError
from statusd.store import Store, enhancements


def listed(store: Store, **kw: Any) -> list[dict[str, Any]]:
    return store.read(enhancements.list_all, m.parse_args(m.ListEnhancementsArgs, kw))["enhancements"]


async def test_create_defaults(store: Store) -> None:
    enh = await create_enhancement(store, title="  Dark mode  ", actor="alice")
    assert (enh["title"], enh["priority"], enh["status"]) == ("Dark mode", "medium", "planned")
    assert enh["target_quarter"] is None
    assert enh["target_quarter_display"] is None
    assert enh["requires_constitutional_principles"] == []
    assert enh["depends_on"] == []
    assert (enh["version"], enh["created_by"]) == (1, "alice")


@pytest.mark.parametrize(
    ("given", "stored", "shown"),
    [("2026-Q1", "2026-Q1", "Q1 2026"), ("Q3 2027", "2027-Q3", "Q3 2027"), ("q4 2026", "2026-Q4", "Q4 2026"),
     (" 2028 - q2 ", "2028-Q2", "Q2 2028")],
)  # fmt: skip
async def test_quarter_accepts_both_forms(store: Store, given: str, stored: str, shown: str) -> None:
    enh = await create_enhancement(store, target_quarter=given)
    assert enh["target_quarter"] == stored
    assert enh["target_quarter_display"] == shown
    assert listed(store)[0]["target_quarter"] == stored


@pytest.mark.parametrize("bad", ["2026-Q5", "Q0 2026", "2026", "next quarter", "2026Q1x"])
async def test_bad_quarter_is_rejected(store: Store, bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_enhancement(store, target_quarter=bad)
    assert exc.value.fields[0]["field"] == "target_quarter"


@pytest.mark.parametrize(("field", "value"), [("status", "done"), ("priority", "urgent"), ("title", "")])
async def test_enum_and_title_rules(store: Store, field: str, value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_enhancement(store, **{field: value})
    assert exc.value.fields[0]["field"] == field


async def test_list_filters(store: Store) -> None:
    a = await create_enhancement(store, title="a", status="approved", priority="high", target_quarter="2026-Q1")
    b = await create_enhancement(store, title="b", status="planned", priority="high", target_quarter="Q2 2026")
    c = await create_enhancement(store, title="c", status="approved", priority="low")
    assert [e["id"] for e in listed(store)] == [a["id"], b["id"], c["id"]]
    assert [e["id"] for e in listed(store, status="approved")] == [a["id"], c["id"]]
    assert [e["id"] for e in listed(store, priority="high")] == [a["id"], b["id"]]
    assert [e["id"] for e in listed(store, target_quarter="Q1 2026")] == [a["id"]]
    assert [e["id"] for e in listed(store, target_quarter="2026-q2")] == [b["id"]]
    assert [e["id"] for e in listed(store, status="approved", priority="low")] == [c["id"]]
    with pytest.raises(ValidationError):
        listed(store, target_quarter="soon")


async def test_update_with_version(store: Store) -> None:
    enh = await create_enhancement(store, title="x")
    updated = await update_enhancement(
        store, enh["id"][:8], 1, actor="bob", status="implementing", target_quarter="Q2 2026",
        requires_constitutional_principles=["Test-first"], description="why",
    )  # fmt: skip
    assert updated["version"] == 2
    assert updated["updated_by"] == "bob"
    assert (updated["status"], updated["target_quarter"], updated["description"]) == ("implementing", "2026-Q2", "why")
    assert updated["requires_constitutional_principles"] == ["Test-first"]
    cleared = await update_enhancement(store, enh["id"], 2, target_quarter=None, description=None)
    assert (cleared["target_quarter"], cleared["description"], cleared["version"]) == (None, None, 3)
    same = await update_enhancement(store, enh["id"], 3, status="implementing")
    assert same["version"] == 3


async def test_stale_version_is_rejected(store: Store) -> None:
    enh = await create_enhancement(store)
    await update_enhancement(store, enh["id"], 1, actor="alice", status="approved")
    with pytest.raises(VersionMismatchError) as exc:
        await update_enhancement(store, enh["id"], 1, actor="bob", status="completed")
    assert (exc.value.expected_version, exc.value.actual_version, exc.value.last_updated_by) == (1, 2, "alice")
    assert listed(store)[0]["status"] == "approved"


@pytest.mark.parametrize("field", ["title", "priority", "status"])
async def test_required_fields_cannot_be_null(store: Store, field: str) -> None:
    enh = await create_enhancement(store)
    with pytest.raises(ValidationError) as exc:
        await update_enhancement(store, enh["id"], 1, **{field: None})
    assert exc.value.fields[0]["field"] == field


async def test_depends_on_must_exist(store: Store) -> None:
    base = await create_enhancement(store, title="base")
    dep = await create_enhancement(store, title="dependent", depends_on=[base["id"][:8]])
    assert dep["depends_on"] == [base["id"]]
    with pytest.raises(NotFoundError) as exc:
        await create_enhancement(store, depends_on=[base["id"], "ffffffff"])
    assert exc.value.details["field"] == "depends_on.1"
    assert exc.value.details["entity"] == "enhancement"
    with pytest.raises(NotFoundError):
        await update_enhancement(store, base["id"], 1, depends_on=["eeeeeeee"])
    assert len(listed(store)) == 2


async def test_depends_on_rejects_self_and_duplicates(store: Store) -> None:
    a = await create_enhancement(store)
    b = await create_enhancement(store)
    with pytest.raises(CycleDetectedError):
        await update_enhancement(store, a["id"], 1, depends_on=[a["id"]])
    with pytest.raises(ValidationError) as exc:
        await update_enhancement(store, a["id"], 1, depends_on=[b["id"], b["id"]])
    assert exc.value.fields[0]["field"] == "depends_on.1"
    ok = await update_enhancement(store, a["id"], 1, depends_on=[b["id"]])
    assert ok["depends_on"] == [b["id"]]


async def test_principles_must_be_non_empty(store: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        await create_enhancement(store, requires_constitutional_principles=["ok", "  "])
    assert exc.value.fields[0]["field"] == "requires_constitutional_principles.1"
