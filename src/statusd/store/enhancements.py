"""Future enhancements (SPEC §2.5)."""

from __future__ import annotations

import sqlite3
from typing import Any

from statusd.errors import CycleDetectedError, ValidationError
from statusd.models import (
    CreateEnhancementArgs,
    ListEnhancementsArgs,
    UpdateEnhancementArgs,
    human_quarter,
    normalize_quarter,
)
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import ENHANCEMENT


def present(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["target_quarter_display"] = human_quarter(row["target_quarter"])
    return out


def _depends_on(conn: sqlite3.Connection, texts: list[str], self_id: str | None) -> list[str]:
    ids: list[str] = []
    for i, text in enumerate(texts):
        ident = ent.resolve(conn, ENHANCEMENT, text, f"depends_on.{i}")
        if ident == self_id:
            raise CycleDetectedError("an enhancement cannot depend on itself", id=ident)
        if ident in ids:
            raise ValidationError.one(f"depends_on.{i}", f"duplicate id {ident}")
        ids.append(ident)
    return ids


def _principles(values: list[str]) -> list[str]:
    for i, v in enumerate(values):
        if not v.strip() or len(v) > 500:
            raise ValidationError.one(f"requires_constitutional_principles.{i}", "must be 1-500 characters")
    return list(values)


def create(conn: sqlite3.Connection, ctx: WriteContext, args: CreateEnhancementArgs) -> dict[str, Any]:
    values = {
        "title": args.title,
        "description": args.description,
        "priority": args.priority,
        "status": args.status,
        "target_quarter": normalize_quarter(args.target_quarter, "target_quarter") if args.target_quarter else None,
        "requires_constitutional_principles": _principles(args.requires_constitutional_principles or []),
        "depends_on": _depends_on(conn, args.depends_on or [], None),
    }
    return present(ent.insert(conn, ctx, ENHANCEMENT, values))


def update(conn: sqlite3.Connection, ctx: WriteContext, args: UpdateEnhancementArgs) -> dict[str, Any]:
    current = ent.load(conn, ENHANCEMENT, args.id)
    given = args.model_fields_set - {"actor"}
    ent.refuse_nulls(args, ("title", "priority", "status"))
    ent.check_version(ENHANCEMENT, current, args.version)
    new: dict[str, Any] = {f: getattr(args, f) for f in ("title", "description", "priority", "status") if f in given}
    if "target_quarter" in given:
        tq = args.target_quarter
        new["target_quarter"] = normalize_quarter(tq, "target_quarter") if tq else None
    if "requires_constitutional_principles" in given:
        new["requires_constitutional_principles"] = _principles(args.requires_constitutional_principles or [])
    if "depends_on" in given:
        new["depends_on"] = _depends_on(conn, args.depends_on or [], current["id"])
    return present(ent.update(conn, ctx, ENHANCEMENT, current, new))


def list_all(conn: sqlite3.Connection, args: ListEnhancementsArgs) -> dict[str, Any]:
    where = ["deleted_at IS NULL"]
    params: list[Any] = []
    for name in ("status", "priority"):
        if getattr(args, name) is not None:
            where.append(f"{name} = ?")
            params.append(getattr(args, name))
    if args.target_quarter:
        where.append("target_quarter = ?")
        params.append(normalize_quarter(args.target_quarter, "target_quarter"))
    rows = conn.execute(f"{ENHANCEMENT.select} WHERE {' AND '.join(where)} ORDER BY created_at, id", params).fetchall()
    return {"enhancements": [present(ent.decode(ENHANCEMENT, r)) for r in rows]}
