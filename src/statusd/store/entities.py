"""Generic entity rows: decoding, id resolution, and the one write path every change goes through.

``insert`` and ``update`` are the only functions that change an entity row. Each bumps the
version, appends the history record (SPEC §2.7) and, in replicated mode, the outbox operation
(SPEC §5.2) in the caller's transaction, so none of the three can exist without the others.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from statusd.errors import NotFoundError, ValidationError, VersionMismatchError
from statusd.limits import check_metadata_size
from statusd.models import check_id_text, new_id
from statusd.store import history, ids
from statusd.store.context import WriteContext

AUDIT = ("version", "created_at", "created_by", "updated_at", "updated_by")


@dataclass(frozen=True)
class Entity:
    name: str
    table: str
    fields: tuple[str, ...]
    json_fields: frozenset[str] = frozenset()

    @property
    def columns(self) -> tuple[str, ...]:
        return ("id", *self.fields, *AUDIT)

    @property
    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.table}"


WORK_ITEM = Entity(
    "work_item",
    "work_items",
    (
        "item_type", "title", "description", "status", "priority", "parent_id", "depth",
        "branch_name", "commit_hash", "pr_number", "metadata", "claimed_by", "claim_expires_at",
        "deleted_at", "archived_at",
    ),
    frozenset({"metadata"}),
)  # fmt: skip
DEPENDENCY = Entity("dependency", "dependencies", ("work_item_id", "depends_on_id", "dependency_type", "deleted_at"))
VENDOR = Entity("vendor", "vendors", ("name", "status", "metadata", "deleted_at"), frozenset({"metadata"}))
DEPLOYMENT = Entity(
    "deployment",
    "deployments",
    ("timestamp", "metadata", "vendor_ids", "work_item_ids"),
    frozenset({"metadata", "vendor_ids", "work_item_ids"}),
)
ENHANCEMENT = Entity(
    "enhancement",
    "enhancements",
    (
        "title", "description", "priority", "status", "target_quarter",
        "requires_constitutional_principles", "depends_on", "deleted_at",
    ),
    frozenset({"requires_constitutional_principles", "depends_on"}),
)  # fmt: skip
CONFIGURATION = Entity(
    "configuration",
    "configuration",
    ("active_context_type", "current_session_id", "git_branch", "git_head_commit", "default_token_budget"),
)
ENTITIES = {e.name: e for e in (WORK_ITEM, DEPENDENCY, VENDOR, DEPLOYMENT, ENHANCEMENT, CONFIGURATION)}

# Derived columns are recomputed where a change is applied, so they never travel as changes.
DERIVED = frozenset({"depth"})


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def decode_json(raw: str | None) -> Any:
    return json.loads(raw) if raw is not None else None


def decode(entity: Entity, row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(entity.columns, row, strict=True))
    for name in entity.json_fields:
        raw = out[name]
        out[name] = json.loads(raw) if raw is not None else None
    return out


def _encode(entity: Entity, name: str, value: Any) -> Any:
    return dumps(value) if name in entity.json_fields and value is not None else value


def refuse_nulls(args: BaseModel, fields: Iterable[str]) -> None:
    """An update may leave a required field out, never set it to null: name every such field."""
    nulls = [f for f in fields if f in args.model_fields_set and getattr(args, f) is None]
    if nulls:
        raise ValidationError([{"field": f, "message": "cannot be null"} for f in nulls])


def get(conn: sqlite3.Connection, entity: Entity, ident: str) -> dict[str, Any] | None:
    row = conn.execute(f"{entity.select} WHERE id = ?", (ident,)).fetchone()
    return None if row is None else decode(entity, row)


def version_of(conn: sqlite3.Connection, entity: Entity, ident: str) -> int | None:
    row = conn.execute(f"SELECT version FROM {entity.table} WHERE id = ?", (ident,)).fetchone()
    return None if row is None else int(row[0])


def resolve(conn: sqlite3.Connection, entity: Entity, text: str, field: str = "id") -> str:
    """Turn a full id or a unique prefix (≥ 6 hex chars) into the full id."""
    key = check_id_text(text, field)
    if len(key) == 36:
        if conn.execute(f"SELECT 1 FROM {entity.table} WHERE id = ?", (key,)).fetchone():
            return key
        raise NotFoundError(entity.name, text, field)
    query = f"SELECT id FROM {entity.table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 2"
    return str(ids.one_by_prefix(conn, query, text, entity=entity.name, field=field)[0])


def load(conn: sqlite3.Connection, entity: Entity, text: str, field: str = "id") -> dict[str, Any]:
    row = get(conn, entity, resolve(conn, entity, text, field))
    assert row is not None
    return row


def check_version(entity: Entity, current: dict[str, Any], expected: int) -> None:
    if current["version"] != expected:
        raise VersionMismatchError(entity.name, current["id"], expected, current["version"], current["updated_by"])


def insert(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity: Entity,
    values: dict[str, Any],
    ident: str | None = None,
) -> dict[str, Any]:
    """Insert a new entity at version 1 and record it."""
    row = {name: values.get(name) for name in entity.fields}
    _check_metadata(ctx, row)
    row.update(
        id=ident or new_id(),
        version=1,
        created_at=ctx.now,
        created_by=ctx.actor,
        updated_at=ctx.now,
        updated_by=ctx.actor,
    )
    conn.execute(
        f"INSERT INTO {entity.table} ({', '.join(entity.columns)}) VALUES ({', '.join('?' * len(entity.columns))})",
        [_encode(entity, c, row[c]) for c in entity.columns],
    )
    changes = {
        k: {"old": None, "new": v} for k, v in row.items() if k in entity.fields and k not in DERIVED and v is not None
    }
    _record(conn, ctx, entity, str(row["id"]), 0, 1, changes)
    return row


def update(
    conn: sqlite3.Connection, ctx: WriteContext, entity: Entity, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """Apply the fields of ``new`` that differ from ``current``; a no-op changes nothing."""
    changes = {
        k: {"old": current.get(k), "new": v} for k, v in new.items() if k in entity.fields and current.get(k) != v
    }
    if not changes:
        if ctx.confirming and ctx.replicated and ctx.via != "sync":
            # Nothing to change here, but the caller is promised the hub holds these values: a check
            # (an operation without changes) asks the hub to compare versions, in outbox order.
            asserts = {k: current.get(k) for k in new if k in entity.fields and k not in DERIVED}
            _queue(conn, ctx, entity, current["id"], current["version"], current["version"], "{}", asserts=asserts)
        return current
    row = dict(current)
    row.update({k: c["new"] for k, c in changes.items()})
    if "metadata" in changes:
        _check_metadata(ctx, row)
    row.update(version=current["version"] + 1, updated_at=ctx.now, updated_by=ctx.actor)
    sets = [*changes, "version", "updated_at", "updated_by"]
    cur = conn.execute(
        f"UPDATE {entity.table} SET {', '.join(f'{c} = ?' for c in sets)} WHERE id = ? AND version = ?",
        [*(_encode(entity, c, row[c]) for c in sets), current["id"], current["version"]],
    )
    if cur.rowcount != 1:  # the single writer makes this unreachable unless a row changed underneath
        actual = conn.execute(f"SELECT version, updated_by FROM {entity.table} WHERE id = ?", (current["id"],))
        found = actual.fetchone()
        raise VersionMismatchError(entity.name, current["id"], current["version"], found[0] if found else 0)
    recorded = {k: c for k, c in changes.items() if k not in DERIVED}
    if recorded:
        _record(conn, ctx, entity, row["id"], current["version"], row["version"], recorded)
    return row


def _check_metadata(ctx: WriteContext, row: dict[str, Any]) -> None:
    # A merge of small updates can grow metadata past the limit the tool boundary checks per call;
    # what another machine already stored (via sync) is taken as it is.
    if ctx.via != "sync" and isinstance(row.get("metadata"), dict):
        check_metadata_size(row["metadata"])


def _record(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity: Entity,
    ident: str,
    base_version: int,
    new_version: int,
    changes: dict[str, dict[str, Any]],
) -> None:
    # Changes pulled from Postgres are already there: they are recorded, never queued back.
    op_id = new_id() if ctx.replicated and ctx.via != "sync" else None
    encoded = dumps(changes)
    history.insert(
        conn,
        entity=entity.name,
        entity_id=ident,
        version=new_version,
        changes=encoded,
        actor=ctx.actor,
        at=ctx.now,
        machine=ctx.machine,
        via=ctx.via,
        op_id=op_id,
    )
    if op_id is not None:
        _queue(conn, ctx, entity, ident, base_version, new_version, encoded, op_id)
    ctx.changed_entities.add(entity.name)


def _queue(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity: Entity,
    ident: str,
    base_version: int,
    new_version: int,
    encoded_changes: str,
    op_id: str | None = None,
    asserts: dict[str, Any] | None = None,
) -> None:
    """Append an operation to the outbox; its id joins ``ctx.op_ids`` before the commit."""
    op_id = op_id or new_id()
    conn.execute(
        "INSERT INTO outbox(op_id, entity, entity_id, base_version, new_version, changes, created_at, actor, via, "
        "asserts, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            op_id, entity.name, ident, base_version, new_version, encoded_changes, ctx.now, ctx.actor, ctx.via,
            None if asserts is None else dumps(asserts), ctx.import_run,
        ),
    )  # fmt: skip
    ctx.op_ids.append(op_id)
