"""Helpers for the store tests: a settable clock and one-line wrappers around the write functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from statusd import models as m
from statusd.store import Store, WriteContext, dependencies, enhancements, vendors, workitems
from statusd.store import entities as ent

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to (``Store(..., clock=FakeClock())``)."""

    def __init__(self, start: datetime = START) -> None:
        self.at = start

    def __call__(self) -> str:
        return m.iso(self.at)

    def advance(self, **delta: float) -> str:
        self.at += timedelta(**delta)
        return self()


def ctx(actor: str = "tester", **kw: Any) -> WriteContext:
    return WriteContext(actor=actor, **kw)


async def create_item(store: Store, *, actor: str = "tester", **fields: Any) -> dict[str, Any]:
    fields.setdefault("item_type", "task")
    fields.setdefault("title", "an item")
    return await store.write(workitems.create, ctx(actor), m.parse_args(m.CreateWorkItemArgs, fields))


async def update_item(store: Store, ident: str, *, actor: str = "tester", **fields: Any) -> dict[str, Any]:
    """Update with the current version unless ``version`` is given."""
    if "version" not in fields:
        fields["version"] = get_item(store, ident)["version"]
    args = m.parse_args(m.UpdateWorkItemArgs, {"id": ident, **fields})
    return await store.write(workitems.update, ctx(actor), args)


def get_item(store: Store, ident: str) -> dict[str, Any]:
    row = store.read(ent.get, ent.WORK_ITEM, ident)
    assert row is not None, f"no work item {ident}"
    return row


def query_item(store: Store, ident: str, **flags: Any) -> dict[str, Any]:
    return store.read(workitems.query, m.parse_args(m.QueryWorkItemArgs, {"id": ident, **flags}), store.clock())


def list_items(store: Store, **filters: Any) -> dict[str, Any]:
    return store.read(workitems.list_items, m.parse_args(m.ListWorkItemsArgs, filters), store.clock())


def list_ids(store: Store, **filters: Any) -> set[str]:
    return {row["id"] for row in list_items(store, **filters)["items"]}


async def add_edge(store: Store, a: str, b: str, kind: str = "depends_on", actor: str = "tester") -> dict[str, Any]:
    args = m.parse_args(m.DependencyArgs, {"work_item_id": a, "depends_on_id": b, "dependency_type": kind})
    return await store.write(dependencies.add, ctx(actor), args)


async def remove_edge(store: Store, a: str, b: str, kind: str = "depends_on") -> dict[str, Any]:
    args = m.parse_args(m.DependencyArgs, {"work_item_id": a, "depends_on_id": b, "dependency_type": kind})
    return await store.write(dependencies.remove, ctx(), args)


async def claim(store: Store, actor: str = "worker", **fields: Any) -> dict[str, Any] | None:
    return await store.write(workitems.claim, ctx(actor), m.parse_args(m.ClaimWorkItemArgs, fields))


async def create_vendor(store: Store, name: str, actor: str = "tester", **fields: Any) -> dict[str, Any]:
    return await store.write(vendors.create, ctx(actor), m.parse_args(m.CreateVendorArgs, {"name": name, **fields}))


async def update_vendor(store: Store, name: str, version: int, actor: str = "tester", **fields: Any) -> dict[str, Any]:
    args = m.parse_args(m.UpdateVendorArgs, {"name": name, "version": version, **fields})
    return await store.write(vendors.update, ctx(actor), args)


async def create_enhancement(store: Store, actor: str = "tester", **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", "an enhancement")
    return await store.write(enhancements.create, ctx(actor), m.parse_args(m.CreateEnhancementArgs, fields))


async def update_enhancement(store: Store, ident: str, version: int, actor: str = "tester", **fields: Any) -> Any:
    args = m.parse_args(m.UpdateEnhancementArgs, {"id": ident, "version": version, **fields})
    return await store.write(enhancements.update, ctx(actor), args)


def history_count(store: Store, ident: str | None = None) -> int:
    if ident is None:
        return int(store.reader.execute("SELECT COUNT(*) FROM history").fetchone()[0])
    return int(store.reader.execute("SELECT COUNT(*) FROM history WHERE entity_id = ?", (ident,)).fetchone()[0])


def deployment_metadata(**overrides: Any) -> dict[str, Any]:
    md: dict[str, Any] = {
        "pr_number": 12,
        "pr_title": "Ship the extractor",
        "commit_hash": "a" * 40,
        "test_summary": {"passed": 10, "failed": 0, "skipped": 1},
        "constitutional_compliance": True,
    }
    md.update(overrides)
    return md
