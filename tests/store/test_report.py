"""The full status report (SPEC §7): vendor health, work-item counts, deployments, enhancements."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import (
    FakeClock,
    add_edge,
    claim,
    create_enhancement,
    create_item,
    create_vendor,
    ctx,
    deployment_metadata,
    update_item,
)

from statusd import models as m
from statusd.store import Store, WriteContext, deployments, report


def status(store: Store) -> dict[str, Any]:
    return store.read(report.full_status, store.clock())


async def test_empty_store(store: Store) -> None:
    s = status(store)
    assert s["vendor_health"] == {
        "total_vendors": 0,
        "operational_count": 0,
        "broken_count": 0,
        "operational_percentage": 0.0,
    }
    assert s["active_work_items"] == {
        "total_count": 0,
        "by_type": {},
        "by_status": {},
        "by_priority": {},
        "ready_count": 0,
        "archived_count": 0,
    }
    assert s["recent_deployments"] == []
    assert s["pending_enhancements"] == []
    assert s["configuration"]["default_token_budget"] == 200_000


@pytest.mark.parametrize(("operational", "total", "pct"), [(1, 3, 33.33), (2, 3, 66.67), (3, 3, 100.0), (0, 2, 0.0)])
async def test_vendor_health_percentage_has_two_decimals(
    store: Store, operational: int, total: int, pct: float
) -> None:
    for i in range(total):
        await create_vendor(store, f"v{i}", status="operational" if i < operational else "broken")
    health = status(store)["vendor_health"]
    assert health == {
        "total_vendors": total,
        "operational_count": operational,
        "broken_count": total - operational,
        "operational_percentage": pct,
    }


async def test_work_item_counts(cstore: Store, clock: FakeClock) -> None:
    await create_item(cstore, item_type="research")  # archived below
    clock.advance(days=400)
    p = await create_item(cstore, item_type="project", priority="high")
    t1 = await create_item(cstore, item_type="task", parent_id=p["id"], priority="critical")
    await create_item(cstore, item_type="task", parent_id=p["id"], status="blocked")
    await create_item(cstore, item_type="session", status="completed", priority="low")
    gone = await create_item(cstore, item_type="task")
    await update_item(cstore, gone["id"], deleted=True)
    await add_edge(cstore, p["id"], t1["id"])  # p waits for t1
    await claim(cstore, id=t1["id"])
    await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
    summary = status(cstore)["active_work_items"]
    assert summary == {
        "total_count": 4,
        "by_type": {"project": 1, "task": 2, "session": 1},
        "by_status": {"active": 2, "blocked": 1, "completed": 1},
        "by_priority": {"high": 1, "critical": 1, "medium": 1, "low": 1},
        "ready_count": 0,  # p waits for t1, t1 is claimed, t2 blocked, s1 completed
        "archived_count": 1,
    }
    clock.advance(minutes=31)  # t1's claim expires
    assert status(cstore)["active_work_items"]["ready_count"] == 1


async def test_recent_deployments_are_the_last_ten_newest_first(store: Store) -> None:
    for day in range(1, 13):
        md = deployment_metadata(pr_number=day, pr_title=f"PR {day}", summary="s")
        args = m.parse_args(m.RecordDeploymentArgs, {"metadata": md, "timestamp": f"2026-01-{day:02d}T00:00:00Z"})
        await store.write(deployments.record, ctx(), args)
    recent = status(store)["recent_deployments"]
    assert [d["pr_number"] for d in recent] == list(range(12, 2, -1))
    first = recent[0]
    assert set(first) >= {
        "pr_number", "pr_title", "commit_hash", "timestamp", "test_summary", "constitutional_compliance",
    }  # fmt: skip
    assert (first["pr_title"], first["timestamp"]) == ("PR 12", "2026-01-12T00:00:00.000000Z")
    assert first["commit_hash"] == "a" * 40
    assert first["test_summary"] == {"passed": 10, "failed": 0, "skipped": 1}
    assert first["constitutional_compliance"] is True


async def test_pending_enhancements_exclude_completed(store: Store) -> None:
    a = await create_enhancement(store, title="a", priority="high", target_quarter="Q1 2026")
    await create_enhancement(store, title="done", status="completed")
    b = await create_enhancement(store, title="b", status="implementing")
    pending = status(store)["pending_enhancements"]
    assert [e["id"] for e in pending] == [a["id"], b["id"]]
    assert pending[0] == {
        "id": a["id"],
        "title": "a",
        "priority": "high",
        "status": "planned",
        "target_quarter": "2026-Q1",
        "target_quarter_display": "Q1 2026",
    }
