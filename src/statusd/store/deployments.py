"""Deployments (SPEC §2.4): immutable events linked to vendors and work items."""

from __future__ import annotations

import sqlite3
from typing import Any

from statusd.errors import ValidationError
from statusd.models import (
    ListDeploymentsArgs,
    QueryDeploymentArgs,
    RecordDeploymentArgs,
    parse_timestamp,
    validate_deployment_metadata,
)
from statusd.store import entities as ent
from statusd.store import vendors
from statusd.store.db import WriteContext
from statusd.store.entities import DEPLOYMENT, VENDOR, WORK_ITEM


def _resolve_links(conn: sqlite3.Connection, entity: ent.Entity, texts: list[str] | None, field: str) -> list[str]:
    ids: list[str] = []
    for i, text in enumerate(texts or []):
        ident = ent.resolve(conn, entity, text, f"{field}.{i}")
        if ident in ids:
            raise ValidationError.one(f"{field}.{i}", f"duplicate id {ident}")
        ids.append(ident)
    return ids


def record(conn: sqlite3.Connection, ctx: WriteContext, args: RecordDeploymentArgs) -> dict[str, Any]:
    metadata = validate_deployment_metadata(args.metadata)
    values = {
        "timestamp": parse_timestamp(args.timestamp, "timestamp") if args.timestamp else ctx.now,
        "metadata": metadata,
        "vendor_ids": _resolve_links(conn, VENDOR, args.vendor_ids, "vendor_ids"),
        "work_item_ids": _resolve_links(conn, WORK_ITEM, args.work_item_ids, "work_item_ids"),
    }
    row = ent.insert(conn, ctx, DEPLOYMENT, values)
    index_links(conn, row)
    return row


def index_links(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """Maintain the link index that ``list_deployments(vendor=…)`` uses."""
    links = [(row["id"], "vendor", v) for v in row["vendor_ids"]]
    links += [(row["id"], "work_item", w) for w in row["work_item_ids"]]
    conn.executemany("INSERT OR IGNORE INTO deployment_links VALUES (?, ?, ?)", links)


def query(conn: sqlite3.Connection, args: QueryDeploymentArgs) -> dict[str, Any]:
    row = ent.load(conn, DEPLOYMENT, args.id)
    row["affected_vendors"] = [
        {"id": r[0], "name": r[1], "status": r[2], "operational": r[2] == "operational"}
        for vid in row["vendor_ids"]
        for r in conn.execute("SELECT id, name, status FROM vendors WHERE id = ?", (vid,))
    ]
    row["related_work_items"] = [
        {"id": r[0], "title": r[1], "item_type": r[2], "status": r[3]}
        for wid in row["work_item_ids"]
        for r in conn.execute("SELECT id, title, item_type, status FROM work_items WHERE id = ?", (wid,))
    ]
    return row


def list_recent(conn: sqlite3.Connection, args: ListDeploymentsArgs) -> dict[str, Any]:
    sql = f"{DEPLOYMENT.select} d"
    where: list[str] = []
    params: list[Any] = []
    if args.since:
        where.append("d.timestamp >= ?")
        params.append(parse_timestamp(args.since, "since"))
    if args.vendor:
        vendor = vendors.by_name(conn, args.vendor, "vendor")
        where.append("d.id IN (SELECT deployment_id FROM deployment_links WHERE kind = 'vendor' AND target_id = ?)")
        params.append(vendor["id"])
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql + " ORDER BY d.timestamp DESC, d.id DESC LIMIT ?", [*params, args.limit]).fetchall()
    return {"deployments": [ent.decode(DEPLOYMENT, r) for r in rows]}
