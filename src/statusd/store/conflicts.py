"""Conflict records (SPEC §2.8, §5.4): what could not be applied as written, until someone decides.

Resolving is an ordinary write on the entity (history, outbox, replication) plus the record's
resolution, in one transaction: ``keep_remote`` keeps what the store already has, ``keep_local``
re-applies the losing side's values on top of the current version, ``custom`` applies given values
to the disputed fields.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.errors import NotFoundError, ValidationError
from statusd.models import ListConflictsArgs, ResolveConflictArgs
from statusd.store import entities as ent
from statusd.store import ids
from statusd.store.db import WriteContext
from statusd.store.entities import ENTITIES

_NAMES = (
    "id", "entity", "entity_id", "kind", "fields", "local_op", "remote_version",
    "detected_at", "resolved_at", "resolved_by", "resolution",
)  # fmt: skip
_COLUMNS = ", ".join(_NAMES)


def _decode(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(_NAMES, row, strict=True))
    out["fields"] = json.loads(out["fields"])
    out["local_op"] = json.loads(out["local_op"])
    return out


def list_conflicts(conn: sqlite3.Connection, args: ListConflictsArgs) -> dict[str, Any]:
    where = "" if args.include_resolved else "WHERE resolved_at IS NULL"
    rows = conn.execute(f"SELECT {_COLUMNS} FROM conflicts {where} ORDER BY detected_at LIMIT ?", (args.limit,))
    conflicts = [_decode(r) for r in rows]
    for c in conflicts:
        c.pop("local_op")
    return {"conflicts": conflicts, "open_count": count_open(conn)}


def count_open(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL").fetchone()[0])


def _load(conn: sqlite3.Connection, text: str) -> dict[str, Any]:
    query = f"SELECT {_COLUMNS} FROM conflicts WHERE id >= ? AND id < ? LIMIT 2"
    return _decode(ids.one_by_prefix(conn, query, text, entity="conflict", name_field=False))


def resolve(conn: sqlite3.Connection, ctx: WriteContext, args: ResolveConflictArgs) -> dict[str, Any]:
    conflict = _load(conn, args.id)
    if conflict["resolved_at"]:
        raise ValidationError.one("id", f"conflict already resolved ({conflict['resolution']})")
    entity = ENTITIES[conflict["entity"]]
    new: dict[str, Any] = {}
    if args.resolution == "keep_local":
        if conflict["kind"] == "duplicate":
            changes = conflict["local_op"]["changes"]
            new = {k: c["new"] for k, c in changes.items() if k in entity.fields and k not in ("name", "deleted_at")}
        else:
            new = {k: v["local"] for k, v in conflict["fields"].items()}
    elif args.resolution == "custom":
        if not args.values:
            raise ValidationError.one("values", "custom resolution needs values for the disputed fields")
        unknown = [k for k in args.values if k not in conflict["fields"]]
        if unknown:
            raise ValidationError.one("values", f"not disputed in this conflict: {unknown}")
        new = dict(args.values)
    current = ent.get(conn, entity, conflict["entity_id"])
    if current is None:
        raise NotFoundError(entity.name, conflict["entity_id"])
    row = ent.update(conn, ctx, entity, current, new) if new else current
    conn.execute(
        "UPDATE conflicts SET resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?",
        (ctx.now, ctx.actor, args.resolution, conflict["id"]),
    )
    return {"conflict_id": conflict["id"], "resolution": args.resolution, "entity": entity.name, "item": row}
