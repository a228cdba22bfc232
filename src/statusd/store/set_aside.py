"""Operations the hub refuses for good (SPEC §5.2): set aside whole, so the queue goes on.

A refused operation leaves the outbox and becomes a conflict record of kind ``rejected``: its
changes (base → local values, beside the hub's values), the whole operation, and the hub's reason.
The store then shows what the hub holds, as for any conflict (Postgres is the arbiter):

* the hub has the entity — the local row takes the hub's state (or, while later operations of the
  same entity are still queued, just loses this operation's values; their verdicts bring the rest);
* the hub has never seen the entity (its create was refused) — the later queued operations of the
  entity join the record, since none can apply without it, and the local entity is retired
  (soft-deleted without history) until ``resolve_conflict`` retries it.

A caller still waiting for a confirmed write is told instead (a ``validation_error``), and the
write is withdrawn without a record, as a rejected confirmed write is.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.store import conflicts
from statusd.store.db import WriteContext
from statusd.store.entities import ENTITIES


def set_aside(conn: sqlite3.Connection, ctx: WriteContext, op: dict[str, Any], verdict: dict[str, Any]) -> None:
    """Take ``op`` (refused for good, see ``verdict``) out of the queue and keep it as a record.

    The caller (``apply.settle``) then brings the local row to the hub's state when the hub has it.
    """
    ident = op["entity_id"]
    conn.execute("DELETE FROM outbox WHERE op_id = ?", (op["op_id"],))
    on_hub = "data" in verdict
    changes = {k: dict(c) for k, c in op["changes"].items()}
    folded = _fold_later_ops(conn, op, changes) if not on_hub else 0
    if op.get("strict") and not folded:  # later queued writes were acknowledged: they need the record
        conn.execute("DELETE FROM history WHERE op_id = ?", (op["op_id"],))
        reopen_resolution(conn, op)
        if not on_hub and op["base_version"] == 0:
            withdraw_create(conn, ctx, op)
            return
    else:
        remote = verdict.get("data") or {}
        fields = {k: {"base": c.get("old"), "local": c.get("new"), "remote": remote.get(k)} for k, c in changes.items()}
        reason = f"refused by the hub: {verdict.get('reason') or 'no reason given'}"
        conflicts.record(conn, ctx, kind="rejected", op={**op, "changes": changes}, fields=fields,
                         remote_version=verdict.get("version"), reason=reason)  # fmt: skip
    if not on_hub:
        retire(conn, ctx, op["entity"], ident)


def _fold_later_ops(conn: sqlite3.Connection, op: dict[str, Any], changes: dict[str, dict[str, Any]]) -> int:
    """Move the entity's later queued operations into ``changes``: they cannot apply without it."""
    rows = conn.execute("SELECT op_id, changes FROM outbox WHERE entity_id = ? ORDER BY seq", (op["entity_id"],))
    folded = rows.fetchall()
    for _op_id, raw in folded:
        for k, c in json.loads(raw).items():
            changes[k] = {"old": changes.get(k, {}).get("old"), "new": c.get("new")}
    conn.execute("DELETE FROM outbox WHERE entity_id = ?", (op["entity_id"],))
    return len(folded)


def reopen_resolution(conn: sqlite3.Connection, op: dict[str, Any]) -> None:
    """A withdrawn write that settled a conflict leaves the record open again."""
    conflicts.reopen(conn, op["entity_id"], op["at"])


def withdraw_create(conn: sqlite3.Connection, ctx: WriteContext, op: dict[str, Any]) -> None:
    """Undo a confirmed create the hub refused: its caller was told, so it never happened anywhere."""
    entity = ENTITIES[op["entity"]]
    conn.execute(f"DELETE FROM {entity.table} WHERE id = ?", (op["entity_id"],))
    if entity.name == "deployment":
        conn.execute("DELETE FROM deployment_links WHERE deployment_id = ?", (op["entity_id"],))
    ctx.changed_entities.add(entity.name)


def retire(conn: sqlite3.Connection, ctx: WriteContext, entity_name: str, ident: str) -> None:
    """Hide a local entity the hub does not have (no history: the change is not anyone's intent)."""
    entity = ENTITIES[entity_name]
    if "deleted_at" in entity.fields:
        conn.execute(f"UPDATE {entity.table} SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (ctx.now, ident))
        ctx.changed_entities.add(entity_name)
