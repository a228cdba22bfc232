"""The full status report (SPEC §7) and archiving of long-inactive subtrees."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from statusd.models import human_quarter, iso
from statusd.store import configuration, dependencies
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import WORK_ITEM


def full_status(conn: sqlite3.Connection, now: str) -> dict[str, Any]:
    return {
        "vendor_health": _vendor_health(conn),
        "active_work_items": _work_item_summary(conn, now),
        "recent_deployments": _recent_deployments(conn),
        "pending_enhancements": _pending_enhancements(conn),
        "configuration": configuration.get(conn),
    }


def _vendor_health(conn: sqlite3.Connection) -> dict[str, Any]:
    total, operational = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(status = 'operational'), 0) FROM vendors WHERE deleted_at IS NULL"
    ).fetchone()
    return {
        "total_vendors": total,
        "operational_count": operational,
        "broken_count": total - operational,
        "operational_percentage": round(100.0 * operational / total, 2) if total else 0.0,
    }


def _work_item_summary(conn: sqlite3.Connection, now: str) -> dict[str, Any]:
    live = "archived_at IS NULL AND deleted_at IS NULL"
    summary: dict[str, Any] = {"total_count": 0, "by_type": {}, "by_status": {}, "by_priority": {}}
    for status, item_type, priority, n in conn.execute(
        f"SELECT status, item_type, priority, COUNT(*) FROM work_items WHERE {live} "
        "GROUP BY status, item_type, priority"  # the order of the work_items_live index: no sort
    ):
        summary["total_count"] += n
        for key, value in (("by_type", item_type), ("by_status", status), ("by_priority", priority)):
            summary[key][value] = summary[key].get(value, 0) + n
    summary["ready_count"] = conn.execute(
        f"SELECT COUNT(*) FROM work_items w WHERE {dependencies.READY_BULK_SQL}", (now,)
    ).fetchone()[0]
    summary["archived_count"] = conn.execute(
        "SELECT COUNT(*) FROM work_items WHERE archived_at IS NOT NULL"
    ).fetchone()[0]
    return summary


def _recent_deployments(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, timestamp, metadata FROM deployments ORDER BY timestamp DESC, id DESC LIMIT 10"
    ).fetchall()
    out = []
    for ident, timestamp, raw in rows:
        md = ent.decode_json(raw)
        out.append(
            {
                "id": ident,
                "pr_number": md.get("pr_number"),
                "pr_title": md.get("pr_title"),
                "commit_hash": md.get("commit_hash"),
                "timestamp": timestamp,
                "test_summary": md.get("test_summary"),
                "constitutional_compliance": md.get("constitutional_compliance"),
            }
        )
    return out


def _pending_enhancements(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, title, priority, status, target_quarter FROM enhancements "
        "WHERE status != 'completed' AND deleted_at IS NULL ORDER BY created_at, id"
    ).fetchall()
    return [
        {
            "id": r[0],
            "title": r[1],
            "priority": r[2],
            "status": r[3],
            "target_quarter": r[4],
            "target_quarter_display": human_quarter(r[4]),
        }
        for r in rows
    ]


def archive(conn: sqlite3.Connection, ctx: WriteContext, after_days: int) -> dict[str, Any]:
    """Archive every maximal subtree whose items were all last active before the cutoff (one transaction)."""
    roots, cutoff = archive_plan(conn, ctx.now, after_days)
    archived = archive_roots(conn, ctx, roots, cutoff)
    return {"archived": archived, "subtrees": len(roots), "cutoff": cutoff}


def archive_plan(conn: sqlite3.Connection, now: str, after_days: int) -> tuple[list[str], str]:
    """The roots of the maximal subtrees inactive since the cutoff, and the cutoff."""
    cutoff = iso(datetime.fromisoformat(now.replace("Z", "+00:00")) - timedelta(days=after_days))
    rows = conn.execute(
        "SELECT id, parent_id, depth, MAX(created_at, updated_at, COALESCE(deleted_at, '')) "
        "FROM work_items WHERE archived_at IS NULL ORDER BY depth DESC"
    ).fetchall()
    latest: dict[str, str] = {}
    parent_of: dict[str, str | None] = {}
    for ident, parent_id, _depth, active in rows:  # deepest first, so children fold into parents
        parent_of[ident] = parent_id
        latest[ident] = max(latest.get(ident, ""), active)
        if parent_id is not None:
            latest[parent_id] = max(latest.get(parent_id, ""), latest[ident])

    def qualifies(ident: str | None) -> bool:
        return ident is not None and ident in parent_of and latest[ident] < cutoff

    return [i for i in parent_of if qualifies(i) and not qualifies(parent_of[i])], cutoff


_SUBTREE = """WITH RECURSIVE sub(id) AS (SELECT ? UNION
                  SELECT w.id FROM work_items w JOIN sub ON w.parent_id = sub.id)"""


def archive_roots(conn: sqlite3.Connection, ctx: WriteContext, roots: list[str], cutoff: str) -> int:
    """Archive these subtrees; one that became active since it was planned is left alone."""
    archived = 0
    for root in roots:
        members = conn.execute(
            f"{_SUBTREE} SELECT w.id, MAX(w.created_at, w.updated_at, COALESCE(w.deleted_at, '')) "
            "FROM sub JOIN work_items w ON w.id = sub.id WHERE w.archived_at IS NULL",
            (root,),
        ).fetchall()
        if not members or max(active for _, active in members) >= cutoff:
            continue
        for ident, _ in members:
            current = ent.get(conn, WORK_ITEM, ident)
            if current is not None:
                ent.update(conn, ctx, WORK_ITEM, current, {"archived_at": ctx.now})
                archived += 1
    return archived
