"""Generic entity rows: decoding, id resolution, and the one write path every change goes through.

``insert`` and ``update`` are the only functions that change an entity row. Each bumps the
version, appends the history record (SPEC §2.7) and, in replicated mode, the outbox operation
(SPEC §5.2) in the caller's transaction, so none of the three can exist without the others.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from statusd.errors import NotFoundError, ValidationError, VersionMismatchError
from statusd.limits import check_metadata_size
from statusd.models import check_id_text, new_id
from statusd.store import history, ids
from statusd.store.context import WriteContext
from statusd.store.packed import packed

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
# The fields a change record names, per entity, in the order ``dumps`` sorts them.
_RECORDED = {e.name: tuple(sorted(f for f in e.fields if f not in DERIVED)) for e in ENTITIES.values()}


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: how every JSON column, history record and operation is stored."""
    return _ENCODER.encode(value)


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
    new = _NewRow(ctx, entity, values, ident)
    conn.execute(
        f"INSERT INTO {entity.table} ({', '.join(entity.columns)}) VALUES ({', '.join('?' * len(entity.columns))})",
        new.columns(),
    )
    _record(conn, ctx, entity, new.ident, 0, 1, new.changes())
    return new.row


def insert_many(
    conn: sqlite3.Connection, ctx: WriteContext, entity: Entity, new: Sequence[tuple[dict[str, Any], str]]
) -> None:
    """:func:`insert` for many ``(values, id)`` pairs, in order: one statement per table.

    Each row travels as one element of a JSON array that SQLite unpacks itself (``json_each``), so
    a batch costs the writer thread a handful of calls into SQLite rather than three per row. Each
    such call lets the event loop take the GIL, and the writer then waits to get it back: an
    import's chunks went from 10.4 s to 8.9 s with three clients calling (docs/decisions.md 2026-12-01).
    """
    if not new:
        return
    rows = [_NewRow(ctx, entity, values, ident) for values, ident in new]
    conn.execute(
        f"INSERT INTO {entity.table} ({', '.join(entity.columns)}) "
        f"SELECT {', '.join(f'value ->> {i}' for i in range(len(entity.columns)))} FROM json_each(?)",
        (packed([r.columns() for r in rows]),),
    )
    _record_many(conn, ctx, entity, [(r.ident, 0, 1, r.changes()) for r in rows])


class _NewRow:
    """A row about to be inserted at version 1, each JSON value encoded once for its column, the
    size check and the history record."""

    __slots__ = ("encoded", "entity", "ident", "row")

    def __init__(self, ctx: WriteContext, entity: Entity, values: dict[str, Any], ident: str | None) -> None:
        row = {name: values.get(name) for name in entity.fields}
        self.encoded = {name: dumps(row[name]) for name in entity.json_fields if row[name] is not None}
        _check_metadata(ctx, row, self.encoded.get("metadata"))
        self.ident = ident or new_id()
        row.update(
            id=self.ident,
            version=1,
            created_at=ctx.now,
            created_by=ctx.actor,
            updated_at=ctx.now,
            updated_by=ctx.actor,
        )
        self.entity = entity
        self.row = row

    def columns(self) -> list[Any]:
        encoded, row = self.encoded, self.row
        return [encoded.get(c, row[c]) for c in self.entity.columns]

    def changes(self) -> str:
        """``dumps`` of ``{field: {"old": None, "new": value}}`` for every recorded field that is set."""
        encoded, row = self.encoded, self.row
        parts = [
            f'"{name}":{{"new":{encoded[name] if name in encoded else dumps(row[name])},"old":null}}'
            for name in _RECORDED[self.entity.name]
            if row[name] is not None
        ]
        return "{" + ",".join(parts) + "}"


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
        _record(conn, ctx, entity, row["id"], current["version"], row["version"], dumps(recorded))
    return row


def _check_metadata(ctx: WriteContext, row: dict[str, Any], encoded: str | None = None) -> None:
    # A merge of small updates can grow metadata past the limit the tool boundary checks per call;
    # what another machine already stored (via sync) is taken as it is. ``encoded``: the metadata
    # already as JSON (an insert encodes it once for the column, this check and the history).
    if ctx.via != "sync" and isinstance(row.get("metadata"), dict):
        check_metadata_size(row["metadata"], encoded=encoded)


def _record(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity: Entity,
    ident: str,
    base_version: int,
    new_version: int,
    encoded: str,
) -> None:
    # Changes pulled from Postgres are already there: they are recorded, never queued back.
    op_id = new_id() if ctx.replicated and ctx.via != "sync" else None
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


def _record_many(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity: Entity,
    records: Sequence[tuple[str, int, int, str]],
) -> None:
    """:func:`_record` for many ``(id, base version, new version, changes as JSON)``: one
    statement per table."""
    queued = ctx.replicated and ctx.via != "sync"
    entries = [(ident, new_version, encoded, new_id() if queued else None)
               for ident, _base, new_version, encoded in records]  # fmt: skip
    history.insert_many(
        conn,
        entity=entity.name,
        rows=entries,
        actor=ctx.actor,
        at=ctx.now,
        machine=ctx.machine,
        via=ctx.via,
    )
    if queued:
        ops = [[op_id, entity.name, ident, base, version, encoded]
               for (ident, base, version, _), (_, _, encoded, op_id) in zip(records, entries, strict=True)]  # fmt: skip
        conn.execute(
            "INSERT INTO outbox(op_id, entity, entity_id, base_version, new_version, changes, created_at, actor, via, "
            "asserts, run_id) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, "
            "?, ?, ?, NULL, ? FROM json_each(?)",
            (ctx.now, ctx.actor, ctx.via, ctx.import_run, packed(ops)),
        )
        ctx.op_ids.extend(str(op[0]) for op in ops)
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
