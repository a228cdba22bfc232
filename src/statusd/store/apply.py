"""Applying the hub's answers and changes to the local store (writer-thread functions).

Two rules keep a machine's store honest while it replicates:

* **Local pending changes stay on top.** A pulled change never overwrites an entity that still has
  operations in the outbox. Every verdict brings the hub's state, and the entity's row becomes that
  state with the operations still queued re-applied on top (renumbered from the hub's version), so a
  rejected or conflicting value never lingers under a later local version (SPEC §5.3).
* **Nothing is discarded.** A rejected confirmed write is reported to its caller; a queued write
  that clashes field by field is kept as a conflict record with base, local and remote values.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.models import new_id
from statusd.store import deployments, history, import_runs
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import ENTITIES, WORK_ITEM
from statusd.store.import_runs import fix_descendant_depths
from statusd.store.outbox import has_pending, known_op_ids, pending_for, set_meta
from statusd.store.set_aside import reopen_resolution, set_aside, withdraw_create


def apply_state(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity_name: str,
    ident: str,
    version: int,
    data: dict[str, Any],
    updated_at: str,
    updated_by: str,
) -> None:
    """Make the local row equal the hub's state (no history, no outbox: the change is the hub's)."""
    entity = ENTITIES[entity_name]
    current = ent.get(conn, entity, ident)
    row: dict[str, Any] = {name: data.get(name) for name in entity.fields}
    if entity is WORK_ITEM:
        row["depth"] = _depth(conn, row.get("parent_id"))
    row.update(
        id=ident,
        version=version,
        created_at=data.get("created_at") or (current or {}).get("created_at") or updated_at,
        created_by=data.get("created_by") or (current or {}).get("created_by") or updated_by,
        updated_at=updated_at,
        updated_by=updated_by,
    )
    if entity_name == "vendor" and not row.get("deleted_at"):
        # A different local vendor with this name lost a duplicate race: the hub's wins here.
        conn.execute(
            "UPDATE vendors SET deleted_at = ? WHERE name = ? COLLATE NOCASE AND id != ? AND deleted_at IS NULL",
            (updated_at, row["name"], ident),
        )
    cols = entity.columns
    conn.execute(
        f"INSERT OR REPLACE INTO {entity.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [ent.dumps(row[c]) if c in entity.json_fields and row[c] is not None else row[c] for c in cols],
    )
    if entity is WORK_ITEM and current is not None and current["depth"] != row["depth"]:
        fix_descendant_depths(conn, ident, row["depth"])
    if entity_name == "deployment":
        deployments.index_links(conn, row)
    ctx.changed_entities.add(entity_name)


def _depth(conn: sqlite3.Connection, parent_id: str | None) -> int:
    if parent_id is None:
        return 0
    row = conn.execute("SELECT depth FROM work_items WHERE id = ?", (parent_id,)).fetchone()
    return 0 if row is None else int(row[0]) + 1


def record_remote_history(conn: sqlite3.Connection, change: dict[str, Any]) -> None:
    """Append a pulled change (another machine's) to the local history."""
    op_id = change.get("op_id")
    history.insert(
        conn,
        entity=change["entity"],
        entity_id=change["entity_id"],
        version=change["version"],
        changes=ent.dumps(change["changes"]),
        actor=change["actor"],
        at=change["at"],
        machine=change["machine"],
        via="sync" if change["via"] == "tool" else change["via"],
        op_id=op_id,
    )


def apply_pulled(conn: sqlite3.Connection, ctx: WriteContext, changes: list[dict[str, Any]], cursor: str) -> int:
    """Apply one batch of pulled changes and advance the cursor in the same transaction.

    A change whose operation id is already in the history is this machine's own (or was pulled
    before): its verdict already brought the hub's state, so it is skipped. While an import runs,
    nothing is applied and the cursor stays (-1 is returned): a pulled change to a row the import
    holds would be lost to its rollback; the replicator pulls again once the run is over.
    """
    if import_runs.active(conn):
        return -1
    applied = 0
    known = known_op_ids(conn, [c["op_id"] for c in changes if c.get("op_id")])
    for change in changes:
        if change.get("op_id") in known:
            continue
        record_remote_history(conn, change)
        if has_pending(conn, change["entity_id"]):
            continue
        entity = ENTITIES.get(change["entity"])
        if entity is None:
            continue
        local = conn.execute(f"SELECT version FROM {entity.table} WHERE id = ?", (change["entity_id"],)).fetchone()
        if local is not None and local[0] > change["version"]:
            continue
        apply_state(
            conn, ctx, change["entity"], change["entity_id"], change["version"], change["data"], change["at"],
            change["actor"],
        )  # fmt: skip
        applied += 1
    set_meta(conn, "pull_cursor", cursor)
    return applied


def settle(
    conn: sqlite3.Connection, ctx: WriteContext, ops: list[dict[str, Any]], verdicts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Record the hub's verdicts: drop the ops from the outbox, adopt the hub's state, keep conflicts."""
    outcomes = []
    for op, verdict in zip(ops, verdicts, strict=True):
        kind = verdict["verdict"]
        if conn.execute("SELECT 1 FROM outbox WHERE op_id = ?", (op["op_id"],)).fetchone() is None:
            # Folded into a duplicate conflict earlier in this batch: the conflict carries it.
            outcomes.append({"op_id": op["op_id"], "verdict": "folded"})
            continue
        if kind == "missing":
            enqueue_full_state(conn, ctx, op["entity"], op["entity_id"], before_seq=op["seq"])
            outcomes.append({"op_id": op["op_id"], "verdict": "missing"})
            continue
        if kind == "invalid":  # refused for good: kept as a record; the store shows the hub's state
            set_aside(conn, ctx, op, verdict)
        conn.execute("DELETE FROM outbox WHERE op_id = ?", (op["op_id"],))
        if op.get("asserts") and kind in ("applied", "merged") and _disagrees(op["asserts"], verdict.get("data") or {}):
            # A check the hub passed on version, but an earlier operation's fate (a rejection, a merge)
            # left other values there than the caller saw: "confirmed" would not be true.
            verdict = {**verdict, "verdict": "rejected"}
            kind = "rejected"
        if kind in ("rejected", "cycle"):
            conn.execute("DELETE FROM history WHERE op_id = ?", (op["op_id"],))
            reopen_resolution(conn, op)
            if "data" not in verdict and op["base_version"] == 0:  # a refused confirmed create: its caller was told
                withdraw_create(conn, ctx, op)
        # A waiting caller is told instead, unless queued writes of the same vendor stand behind it.
        withdrawn = bool(kind == "duplicate" and op.get("strict") and not has_pending(conn, op["entity_id"]))
        if (kind == "conflict" and not op.get("strict")) or (kind == "duplicate" and not withdrawn):
            fields = verdict.get("conflicts") or {
                "name": {"base": None, "local": op["changes"].get("name", {}).get("new"), "remote": None}
            }
            conn.execute(
                "INSERT INTO conflicts(id, entity, entity_id, kind, fields, local_op, remote_version, detected_at, "
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_id(),
                    op["entity"],
                    op["entity_id"] if kind == "conflict" else verdict["entity_id"],
                    "field" if kind == "conflict" else "duplicate",
                    ent.dumps(fields),
                    ent.dumps(op if kind == "conflict" else _with_queued_changes(conn, op)),
                    verdict.get("version"),
                    ctx.now,
                    verdict.get("reason"),
                ),
            )
            ctx.changed_entities.add("conflict")  # the store's listeners hear of it (MCP log message)
        if withdrawn:  # its caller heard "duplicate": the create never happened anywhere
            conn.execute("DELETE FROM history WHERE op_id = ?", (op["op_id"],))
            withdraw_create(conn, ctx, op)
        elif kind == "duplicate":
            _retire_local_duplicate(conn, ctx, op)
        if "data" in verdict:
            adopt(
                conn, ctx, op["entity"], verdict["entity_id"], verdict["version"], verdict["data"],
                verdict.get("updated_at") or ctx.now, verdict.get("updated_by") or op["actor"],
            )  # fmt: skip
        outcomes.append({"op_id": op["op_id"], "entity": op["entity"], "base_version": op["base_version"], **verdict})
    return outcomes


def _disagrees(asserts: dict[str, Any], data: dict[str, Any]) -> bool:
    return any(data.get(k) != v for k, v in asserts.items())


def adopt(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    entity_name: str,
    ident: str,
    version: int,
    data: dict[str, Any],
    updated_at: str,
    updated_by: str,
) -> int:
    """Make the row the hub's state with this machine's queued operations re-applied on top.

    The queued operations are renumbered to follow the hub's version (their base values, which the
    hub merges against, stay as their writers saw them). Returns the row's new version.
    """
    pending = pending_for(conn, ident)
    state = dict(data)
    for op_id, changes, actor, at in pending:
        base = version
        if changes:  # a check (no changes) asks the hub about a version; it makes none
            version += 1
            state.update({k: c.get("new") for k, c in changes.items()})
            updated_at, updated_by = at, actor
            conn.execute("UPDATE history SET version = ? WHERE op_id = ?", (version, op_id))
        conn.execute("UPDATE outbox SET base_version = ?, new_version = ? WHERE op_id = ?", (base, version, op_id))
    apply_state(conn, ctx, entity_name, ident, version, state, updated_at, updated_by)
    return version


def _with_queued_changes(conn: sqlite3.Connection, op: dict[str, Any]) -> dict[str, Any]:
    """The losing vendor's whole local intent: its create plus every change still queued after it."""
    changes = {k: dict(c) for k, c in op["changes"].items()}
    rows = conn.execute(
        "SELECT changes FROM outbox WHERE entity_id = ? AND op_id != ? ORDER BY seq", (op["entity_id"], op["op_id"])
    )
    for (raw,) in rows:
        for k, c in json.loads(raw).items():
            changes[k] = {"old": changes.get(k, {}).get("old"), "new": c["new"]}
    return {**op, "changes": changes}


def _retire_local_duplicate(conn: sqlite3.Connection, ctx: WriteContext, op: dict[str, Any]) -> None:
    """Hide the local vendor that lost a duplicate-name race; its data lives on in the conflict."""
    conn.execute("UPDATE vendors SET deleted_at = ? WHERE id = ?", (ctx.now, op["entity_id"]))
    conn.execute("DELETE FROM outbox WHERE entity_id = ?", (op["entity_id"],))


def enqueue_full_state(
    conn: sqlite3.Connection, ctx: WriteContext, entity_name: str, ident: str, before_seq: int | None = None
) -> None:
    """Queue a create carrying the entity's whole state (for a hub that has never seen it)."""
    entity = ENTITIES[entity_name]
    row = ent.get(conn, entity, ident)
    if row is None:
        return
    changes = {k: {"old": None, "new": row[k]} for k in entity.fields if k not in ent.DERIVED and row[k] is not None}
    op_id = new_id()
    seq = None
    if before_seq is not None:
        low = conn.execute("SELECT MIN(seq) FROM outbox").fetchone()[0]
        seq = min(before_seq, low if low is not None else before_seq) - 1
    conn.execute(
        "INSERT INTO outbox(seq, op_id, entity, entity_id, base_version, new_version, changes, created_at, actor, via) "
        "VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, 'tool')",
        (seq, op_id, entity_name, ident, row["version"], ent.dumps(changes), row["created_at"], row["updated_by"]),
    )


def enqueue_initial_upload(conn: sqlite3.Connection, ctx: WriteContext) -> int:
    """First start in replicated mode: queue every local entity the outbox does not already carry."""
    count = 0
    for entity in ENTITIES.values():
        for (ident,) in conn.execute(
            f"SELECT id FROM {entity.table} WHERE id NOT IN (SELECT entity_id FROM outbox)"
        ).fetchall():
            enqueue_full_state(conn, ctx, entity.name, ident)
            count += 1
    set_meta(conn, "hub_joined", ctx.now)
    return count


def recompute_depths(conn: sqlite3.Connection, ctx: WriteContext) -> None:
    """Derive every work item's depth from its parent chain (after a bulk copy in arbitrary order)."""
    parent_of = dict(conn.execute("SELECT id, parent_id FROM work_items").fetchall())
    depth: dict[str, int] = {}
    for start in parent_of:
        chain: list[str] = []
        node: str | None = start
        while node is not None and node not in depth and node in parent_of and len(chain) <= len(parent_of):
            chain.append(node)
            node = parent_of[node]
        base = depth.get(node, -1) if node is not None else -1  # a missing parent makes a root
        for ident in reversed(chain):
            base += 1
            depth[ident] = base
    conn.executemany(
        "UPDATE work_items SET depth = ? WHERE id = ? AND depth != ?", [(d, i, d) for i, d in depth.items()]
    )


def copy_states(
    conn: sqlite3.Connection, ctx: WriteContext, batch: list[tuple[str, str, int, dict[str, Any], str, str]]
) -> None:
    """Bootstrap's bulk path: write hub rows into an empty store (depths are recomputed afterwards)."""
    by_entity: dict[str, list[list[Any]]] = {}
    for entity_name, ident, version, data, updated_at, updated_by in batch:
        entity = ENTITIES.get(entity_name)
        if entity is None:
            continue
        row: dict[str, Any] = {name: data.get(name) for name in entity.fields}
        if entity is WORK_ITEM:
            row["depth"] = 0
        row.update(
            id=ident,
            version=version,
            created_at=data.get("created_at") or updated_at,
            created_by=data.get("created_by") or updated_by,
            updated_at=updated_at,
            updated_by=updated_by,
        )
        if entity_name == "deployment":
            deployments.index_links(conn, row)
        encoded = [
            ent.dumps(row[c]) if c in entity.json_fields and row[c] is not None else row[c] for c in entity.columns
        ]
        by_entity.setdefault(entity_name, []).append(encoded)
    for entity_name, rows in by_entity.items():
        entity = ENTITIES[entity_name]
        cols = entity.columns
        conn.executemany(
            f"INSERT OR REPLACE INTO {entity.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows
        )
        ctx.changed_entities.add(entity_name)
