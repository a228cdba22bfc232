"""Conflict records (SPEC §2.8, §5.4): what could not be applied as written, until someone decides.

Resolving is an ordinary write on the entity (history, outbox, replication) plus the record's
resolution, in one transaction: ``keep_remote`` (``discard``) keeps what the store already has,
``keep_local`` (``retry``) re-applies the losing side's values on top of the current version,
``custom`` applies given values to the disputed fields.

A disputed field is an entity field or one top-level metadata key, named ``metadata.<key>``
(SPEC §5.4). Records of kind ``rejected`` hold an operation the hub refused for good (SPEC §5.2);
retrying one whose entity never reached the hub brings the retired local entity back first.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from statusd.errors import NotFoundError, ValidationError
from statusd.models import ListConflictsArgs, ResolveConflictArgs, new_id
from statusd.store import dependencies, ids
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import DEPENDENCY, ENTITIES

_NAMES = (
    "id", "entity", "entity_id", "kind", "fields", "local_op", "remote_version",
    "detected_at", "resolved_at", "resolved_by", "resolution", "reason",
)  # fmt: skip
_METADATA_KEY = "metadata."
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
        # A refused operation may hold values JSON cannot carry (Infinity): show them as text.
        c["fields"] = _json_safe(c["fields"])
    return {"conflicts": conflicts, "open_count": count_open(conn)}


def record(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    *,
    kind: str,
    op: dict[str, Any],
    fields: dict[str, Any],
    remote_version: int | None,
    reason: str | None,
) -> str:
    """Keep a write that could not be applied as written; return the record's id."""
    ident = insert(conn, ctx, kind, op["entity"], op["entity_id"], fields, op, remote_version, reason)
    ctx.changed_entities.add("conflict")  # the store's listeners hear of it (an MCP log message)
    return ident


def insert(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    kind: str,
    entity: str,
    entity_id: str,
    fields: dict[str, Any],
    local_op: dict[str, Any],
    remote_version: int | None,
    reason: str | None = None,
) -> str:
    """The conflict row itself (every kind of record goes through here); return its id."""
    ident = new_id()
    conn.execute(
        "INSERT INTO conflicts(id, entity, entity_id, kind, fields, local_op, remote_version, detected_at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (ident, entity, entity_id, kind, ent.dumps(fields), ent.dumps(local_op), remote_version, ctx.now, reason),
    )
    return ident


def reopen(conn: sqlite3.Connection, entity_id: str, at: str) -> None:
    """A withdrawn write that settled a record (same entity, same moment) leaves the record open again."""
    conn.execute(
        "UPDATE conflicts SET resolved_at = NULL, resolved_by = NULL, resolution = NULL "
        "WHERE entity_id = ? AND resolved_at = ? AND resolution NOT IN ('keep_remote', 'discard')",
        (entity_id, at),
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def count_open(conn: sqlite3.Connection, kind: str | None = None) -> int:
    """Open conflict records (of one kind, when given)."""
    if kind is None:
        return int(conn.execute("SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL").fetchone()[0])
    sql = "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL AND kind = ?"
    return int(conn.execute(sql, (kind,)).fetchone()[0])


def _load(conn: sqlite3.Connection, text: str) -> dict[str, Any]:
    query = f"SELECT {_COLUMNS} FROM conflicts WHERE id >= ? AND id < ? LIMIT 2"
    return _decode(ids.one_by_prefix(conn, query, text, entity="conflict", name_field=False))


def resolve(conn: sqlite3.Connection, ctx: WriteContext, args: ResolveConflictArgs) -> dict[str, Any]:
    conflict = _load(conn, args.id)
    if conflict["resolved_at"]:
        raise ValidationError.one("id", f"conflict already resolved ({conflict['resolution']})")
    entity = ENTITIES[conflict["entity"]]
    wanted: dict[str, Any] = {}
    if args.resolution in ("keep_local", "retry"):
        if conflict["kind"] == "duplicate":
            changes = conflict["local_op"]["changes"]
            wanted = {k: c["new"] for k, c in changes.items() if k in entity.fields and k not in ("name", "deleted_at")}
        else:
            wanted = {k: v["local"] for k, v in conflict["fields"].items()}
    elif args.resolution == "custom":
        if not args.values:
            raise ValidationError.one("values", "custom resolution needs values for the disputed fields")
        unknown = [k for k in args.values if k not in conflict["fields"]]
        if unknown:
            raise ValidationError.one("values", f"not disputed in this conflict: {unknown}")
        wanted = dict(args.values)
    current = ent.get(conn, entity, conflict["entity_id"])
    if current is None:
        raise NotFoundError(entity.name, conflict["entity_id"])
    new = _entity_values(current, wanted)
    if new and conflict["kind"] == "rejected" and conflict["remote_version"] is None and "deleted_at" in entity.fields:
        new.setdefault("deleted_at", None)  # the entity never reached the hub: bring it back to send it again
    if entity is DEPENDENCY and current["deleted_at"] is not None and "deleted_at" in new and new["deleted_at"] is None:
        dependencies.check_no_cycle(conn, current["work_item_id"], current["depends_on_id"], current["dependency_type"])
    row = ent.update(conn, ctx, entity, current, new) if new else current
    conn.execute(
        "UPDATE conflicts SET resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?",
        (ctx.now, ctx.actor, args.resolution, conflict["id"]),
    )
    return {"conflict_id": conflict["id"], "resolution": args.resolution, "entity": entity.name, "item": row}


def _entity_values(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """Disputed fields to entity fields: ``metadata.<key>`` sets one key (None removes it)."""
    new: dict[str, Any] = {}
    for name, value in wanted.items():
        if not name.startswith(_METADATA_KEY) or "metadata" not in current:
            new[name] = value
            continue
        meta = new.setdefault("metadata", dict(current.get("metadata") or {}))
        key = name[len(_METADATA_KEY) :]
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return new
