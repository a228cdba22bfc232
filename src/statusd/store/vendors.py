"""Vendors (SPEC §2.3): case-insensitive unique names, metadata defaults and merge."""

from __future__ import annotations

import sqlite3
from typing import Any

from statusd.errors import DuplicateError, NotFoundError
from statusd.models import (
    CreateVendorArgs,
    QueryVendorArgs,
    UpdateVendorArgs,
    check_vendor_name,
    merge_vendor_metadata,
    validate_vendor_metadata,
    vendor_metadata_defaults,
)
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import VENDOR


def present(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["operational"] = row["status"] == "operational"
    return out


def by_name(conn: sqlite3.Connection, name: str, field: str = "name") -> dict[str, Any]:
    row = conn.execute(f"{VENDOR.select} WHERE name = ? COLLATE NOCASE AND deleted_at IS NULL", (name,)).fetchone()
    if row is None:
        raise NotFoundError("vendor", name, field)
    return ent.decode(VENDOR, row)


def create(conn: sqlite3.Connection, ctx: WriteContext, args: CreateVendorArgs) -> dict[str, Any]:
    name = check_vendor_name(args.name)
    if conn.execute("SELECT 1 FROM vendors WHERE name = ? COLLATE NOCASE", (name,)).fetchone():
        raise DuplicateError("vendor", "name", name)
    metadata = validate_vendor_metadata(merge_vendor_metadata(vendor_metadata_defaults(), args.metadata or {}))
    values = {"name": name, "status": args.status or "broken", "metadata": metadata}
    return present(ent.insert(conn, ctx, VENDOR, values))


def update(conn: sqlite3.Connection, ctx: WriteContext, args: UpdateVendorArgs) -> dict[str, Any]:
    current = by_name(conn, check_vendor_name(args.name))
    ent.refuse_nulls(args, ("status", "metadata"))
    ent.check_version(VENDOR, current, args.version)
    new: dict[str, Any] = {}
    if args.status is not None:
        new["status"] = args.status
    if args.metadata is not None:
        new["metadata"] = validate_vendor_metadata(merge_vendor_metadata(current["metadata"], args.metadata))
    return present(ent.update(conn, ctx, VENDOR, current, new))


def query(conn: sqlite3.Connection, args: QueryVendorArgs) -> dict[str, Any]:
    if args.name is not None:
        vendor = present(by_name(conn, args.name.strip()))
        if args.status is not None and vendor["status"] != args.status:
            raise NotFoundError("vendor", f"{args.name} with status {args.status}", "status")
        return vendor
    sql = f"{VENDOR.select} WHERE deleted_at IS NULL"
    params: list[Any] = []
    if args.status is not None:
        sql += " AND status = ?"
        params.append(args.status)
    rows = conn.execute(sql + " ORDER BY name COLLATE NOCASE", params).fetchall()
    return {"vendors": [present(ent.decode(VENDOR, r)) for r in rows]}


def complete_names(conn: sqlite3.Connection, prefix: str, limit: int) -> tuple[list[str], int]:
    """Live vendor names starting with ``prefix`` (case-insensitive): up to ``limit``, and how many."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    where = "deleted_at IS NULL AND name LIKE ? ESCAPE '\\'"
    total = conn.execute(f"SELECT COUNT(*) FROM vendors WHERE {where}", (pattern,)).fetchone()[0]
    rows = conn.execute(
        f"SELECT name FROM vendors WHERE {where} ORDER BY name COLLATE NOCASE LIMIT ?", (pattern, limit)
    ).fetchall()
    return [str(r[0]) for r in rows], int(total)
