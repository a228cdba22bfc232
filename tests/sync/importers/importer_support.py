"""Fixtures in each tool's real on-disk shape (tests/fixtures/importers) and small plan helpers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from statusd import models as m
from statusd.store import Store, WriteContext, workitems
from statusd.store import entities as ent
from statusd.sync.importers.plan import Plan, PlannedItem

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "importers"
BEADS = FIXTURES / "beads"
BACKLOG = FIXTURES / "backlog"
TASKMASTER_TAGGED = FIXTURES / "taskmaster" / "tagged"
TASKMASTER_LEGACY = FIXTURES / "taskmaster" / "legacy"


def by_key(plan: Plan) -> dict[str, PlannedItem]:
    return {i.key: i for i in plan.items}


def edges(plan: Plan) -> set[tuple[str, str]]:
    return {(e.waiter, e.prereq) for e in plan.edges}


def warning(plan: Plan | dict[str, Any], *needles: str) -> str:
    """The one warning that contains every needle (fails listing them all otherwise)."""
    warnings = plan.warnings if isinstance(plan, Plan) else plan["import_warnings"]
    hits = [w for w in warnings if all(n in w for n in needles)]
    assert len(hits) == 1, f"no single warning with {needles}: {warnings}"
    return hits[0]


def get_item(store: Store, ident: str) -> dict[str, Any]:
    row = store.read(ent.get, ent.WORK_ITEM, ident)
    assert row is not None, f"no work item {ident}"
    return row


def list_items(store: Store, **filters: Any) -> dict[str, Any]:
    return store.read(workitems.list_items, m.parse_args(m.ListWorkItemsArgs, filters), store.clock())


async def update_item(store: Store, ident: str, **fields: Any) -> dict[str, Any]:
    args = m.parse_args(m.UpdateWorkItemArgs, {"id": ident, "version": get_item(store, ident)["version"], **fields})
    return await store.write(workitems.update, WriteContext(actor="dana"), args)


def live_waits(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(waiter, prerequisite) of every live dependency edge, whichever of the two types stores it."""
    rows = conn.execute(
        "SELECT work_item_id, depends_on_id, dependency_type FROM dependencies WHERE deleted_at IS NULL"
    )
    return [(a, b) if kind == "depends_on" else (b, a) for a, b, kind in rows]
