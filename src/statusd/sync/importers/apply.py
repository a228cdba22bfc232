"""Apply a :class:`Plan` to the store in short chunks, all or nothing (docs/decisions.md 2026-11-30).

:class:`Importer` holds one run's state; its ``*_chunk`` methods are transaction bodies for
``Store.write``, each a few hundred records, so other clients' writes are served between them.
Every chunk journals what it creates and the pre-image of what it changes
(:mod:`statusd.store.import_runs`); :mod:`.runner` strings the chunks together, marks the run
done, or rolls it back from the journal on any failure.

Re-import is keyed on ``(metadata.source, metadata.source_key)``. Each item remembers, in
``metadata.import_state``, a fingerprint of every field as the import last wrote it and the
version that write produced. A field is written again only when the source changed it; when
statusd changed it too (and differently), statusd's value stays and the clash is recorded as a
conflict (entity ``work_item``, kind ``import``; ``local`` is the source's value, ``remote`` the
store's, ``base`` what the previous import wrote), settled with ``resolve_conflict`` like any other.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from statusd import models as m
from statusd.errors import CycleDetectedError, DepthLimitError, StatusdError, ValidationError
from statusd.models import MAX_DEPTH
from statusd.store import entities as ent
from statusd.store import history, import_runs, imports, workitems
from statusd.store.db import WriteContext
from statusd.store.entities import WORK_ITEM
from statusd.sync.importers import edges
from statusd.sync.importers.plan import IMPORT_STATE, Plan, PlannedEdge, PlannedItem, fingerprint

Progress = Callable[[int, int], None]


class ImportAborted(StatusdError):
    """A failure injected for tests, or the caller's cancellation, ended the import; nothing was written."""


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


@dataclass
class Options:
    dry_run: bool = False
    progress: Progress | None = None
    # Raise ImportAborted after this many items: fault-injection tests, also through the CLI and the
    # daemon (STATUSD_IMPORT_FAIL_AFTER), the way STATUSD_CRASH_AT works for replication.
    fail_after: int | None = field(default_factory=lambda: _env_int("STATUSD_IMPORT_FAIL_AFTER"))


@dataclass
class _Report:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    edges_created: int = 0
    edges_unchanged: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Importer:
    """One run of a plan: what earlier chunks placed, and the report so far."""

    def __init__(self, plan: Plan, options: Options, run_id: str) -> None:
        self.plan = plan
        self.options = options
        self.run_id = run_id
        self.report = _Report(warnings=list(plan.warnings))
        self.known: dict[str, str] = {}  # source key -> id of the item an earlier import made
        self.ids: dict[str, str] = {}
        self.depths: dict[str, int] = {}  # depth of every item this run placed, so children need no lookup
        self.graph: dict[str, set[str]] = {}
        self.fresh: set[str] = set()  # items this run created: no edge of theirs can exist before it adds one
        self.history_mark = 0
        self.done = 0
        self.total = len(plan.items) + len(plan.edges)
        self.step = max(1, self.total // 100)

    # --- reads, outside the writer ------------------------------------------------------------

    def locate(self, conn: sqlite3.Connection) -> None:
        """Which items earlier imports of this source made (ids only: chunks read each row afresh)."""
        for ident, key in imports.source_keys(conn, self.plan.source):
            if isinstance(key, str):
                self.known.setdefault(key, ident)

    def read_graph(self, conn: sqlite3.Connection) -> None:
        """Every live "waits for" edge, and where the history stood: chunks catch up from there."""
        self.history_mark = imports.last_history_seq(conn)
        self.graph = edges.waits_graph(conn)

    # --- transaction bodies -------------------------------------------------------------------

    def _enter(self, conn: sqlite3.Connection, ctx: WriteContext) -> None:
        ctx.via = "migration"
        ctx.import_run = self.run_id
        import_runs.guard_on(conn)

    def items_chunk(self, conn: sqlite3.Connection, ctx: WriteContext, items: Sequence[PlannedItem]) -> None:
        self._enter(conn, ctx)
        fail_after = self.options.fail_after
        new: list[tuple[dict[str, Any], str]] = []  # items to create, inserted together
        for item in items:
            if fail_after is not None and self.done >= fail_after:
                raise ImportAborted(f"import aborted: failure injected after {fail_after} items; nothing was written")
            self.done += 1
            earlier = self._earlier(conn, item.key)
            if earlier is not None:
                self._create(conn, ctx, new)  # an update below may name an item created above as its parent
            self.ids[item.key] = _apply_item(conn, ctx, self, item, earlier, new)
            self._progress(self.done == len(self.plan.items))
        self._create(conn, ctx, new)
        import_runs.guard_off(conn)

    def _create(self, conn: sqlite3.Connection, ctx: WriteContext, new: list[tuple[dict[str, Any], str]]) -> None:
        ent.insert_many(conn, ctx, WORK_ITEM, new)
        import_runs.created_many(conn, self.run_id, WORK_ITEM.name, [ident for _, ident in new])
        self.fresh.update(ident for _, ident in new)
        new.clear()

    def edges_chunk(self, conn: sqlite3.Connection, ctx: WriteContext, planned: Sequence[PlannedEdge]) -> None:
        self._enter(conn, ctx)
        self.history_mark = edges.catch_up(conn, self.graph, self.history_mark)
        created, unchanged = edges.apply(conn, ctx, planned, self.ids, self.fresh, self.graph, self.report.warnings)
        import_runs.created_many(conn, self.run_id, "dependency", created)
        self.report.edges_created += len(created)
        self.report.edges_unchanged += unchanged
        self.done += len(planned)
        self._progress(True)  # once per chunk
        import_runs.guard_off(conn)

    def gone_chunk(self, conn: sqlite3.Connection, ctx: WriteContext, gone: Sequence[tuple[str, str]]) -> None:
        self._enter(conn, ctx)
        planned = {item.key for item in self.plan.items}
        for key, origin in gone:
            row = self._earlier(conn, key)
            if row is not None and key not in planned:
                _delete_gone(conn, ctx, self, row, origin)
        import_runs.guard_off(conn)

    def _earlier(self, conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
        ident = self.known.get(key)
        row = ent.get(conn, WORK_ITEM, ident) if ident is not None else None
        meta = (row or {}).get("metadata") or {}
        if row is None or meta.get("source") != self.plan.source or meta.get("source_key") != key:
            return None
        return row

    def _progress(self, now: bool) -> None:
        if self.options.progress is not None and (self.done % self.step == 0 or now):
            self.options.progress(self.done, self.total)

    def result(self) -> dict[str, Any]:
        plan, report = self.plan, self.report
        if self.options.progress is not None:
            self.options.progress(self.total, self.total)
        return {
            "source": plan.source,
            "path": plan.path,
            "dry_run": self.options.dry_run,
            "records_read": plan.records_read,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "deleted": report.deleted,
            "skipped": len(plan.skips),
            "skips": [s.as_dict() for s in plan.skips],
            "conflicts": report.conflicts,
            "dependencies": {"created": report.edges_created, "unchanged": report.edges_unchanged},
            "import_warnings": report.warnings,  # the envelope owns "warnings" (SPEC §4.2)
        }


def _owned(item: PlannedItem) -> dict[str, Any]:
    return {k: v for k, v in item.metadata.items() if v is not None}


def _desired(item: PlannedItem, parent_id: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": item.title,
        "description": item.description,
        "status": item.status,
        "priority": item.priority,
        "parent_id": parent_id,
        "deleted": item.deleted,
    }
    for key, value in _owned(item).items():
        values[f"metadata.{key}"] = value
    return values


def _current(row: dict[str, Any], names: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {"deleted": row["deleted_at"] is not None}
    for name in names:
        if name.startswith("metadata."):
            values[name] = (row["metadata"] or {}).get(name.partition(".")[2])
        elif name != "deleted":
            values[name] = row[name]
    return values


def _parent_for(
    conn: sqlite3.Connection, item: PlannedItem, ids: dict[str, str], depths: dict[str, int], report: _Report
) -> tuple[str | None, int]:
    if item.parent_key is None:
        return None, 0
    parent_id = ids[item.parent_key]
    if parent_id in depths and depths[parent_id] < MAX_DEPTH:
        return parent_id, depths[parent_id] + 1
    parent = ent.get(conn, WORK_ITEM, parent_id)
    if parent is None or parent["deleted_at"] or parent["archived_at"] or parent["depth"] >= MAX_DEPTH:
        state = "not live" if parent is None or parent["deleted_at"] or parent["archived_at"] else "too deep"
        report.warnings.append(
            f"{item.origin}: parent {item.parent_key} is {state} in statusd; {item.source_id} imported at top level"
        )
        return None, 0
    return str(parent["id"]), int(parent["depth"]) + 1


def _apply_item(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    imp: Importer,
    item: PlannedItem,
    row: dict[str, Any] | None,
    new: list[tuple[dict[str, Any], str]],
) -> str:
    """Reconcile the item an earlier import made, or queue a new one on ``new``; return its id."""
    ids, depths, report = imp.ids, imp.depths, imp.report
    # The source's intent (remembered as seen); where statusd can place a new item may differ.
    desired = _desired(item, ids.get(item.parent_key) if item.parent_key is not None else None)
    if row is not None:
        return _reconcile(conn, ctx, imp, item, row, desired)
    parent_id, depth = _parent_for(conn, item, ids, depths, report)
    metadata = m.validate_item_metadata(item.item_type, _owned(item))
    metadata[IMPORT_STATE] = {"version": 1, "seen": {k: fingerprint(v) for k, v in desired.items()}}
    values = {
        "item_type": item.item_type,
        "title": item.title,
        "description": item.description,
        "status": item.status,
        "priority": item.priority,
        "parent_id": parent_id,
        "depth": depth,
        "metadata": metadata,
        "deleted_at": ctx.now if item.deleted else None,
    }
    report.created += 1
    ident = m.new_id()
    new.append((values, ident))
    if not item.deleted:
        depths[ident] = depth
    return ident


def _reconcile(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    imp: Importer,
    item: PlannedItem,
    row: dict[str, Any],
    desired: dict[str, Any],
) -> str:
    report = imp.report
    state = (row["metadata"] or {}).get(IMPORT_STATE) or {}
    seen: dict[str, str] = dict(state.get("seen") or {})
    if row["archived_at"] is not None:  # archived items are read-only
        if any(fingerprint(v) != seen.get(k) for k, v in desired.items()):
            report.warnings.append(f"{item.origin}: {item.source_id} changed but is archived in statusd; not updated")
        report.unchanged += 1
        return str(row["id"])
    current = _current(row, list(desired))
    changes: dict[str, Any] = {}
    clashes: dict[str, Any] = {}
    for name, value in desired.items():
        new_fp = fingerprint(value)
        if new_fp == seen.get(name):
            continue  # the source did not change it: whatever statusd holds stays
        cur_fp = fingerprint(current[name])
        if cur_fp != new_fp and name in seen and cur_fp != seen[name]:
            clashes[name] = value
        elif cur_fp != new_fp:
            changes[name] = value
        seen[name] = new_fp
    if not changes and not clashes and seen == state.get("seen"):
        report.unchanged += 1
        return str(row["id"])
    import_runs.changing(conn, imp.run_id, WORK_ITEM.name, row)
    if clashes:
        conflict_id = _record_conflict(conn, ctx, item, row, clashes, state, report)
        import_runs.created(conn, imp.run_id, import_runs.CONFLICT_NAME, conflict_id)
    args: dict[str, Any] = {"id": row["id"], "version": row["version"], "actor": ctx.actor[:100]}
    meta_patch = {k.partition(".")[2]: v for k, v in changes.items() if k.startswith("metadata.")}
    meta_patch[IMPORT_STATE] = {"version": row["version"] + 1, "seen": seen}
    args["metadata"] = meta_patch
    for name in ("title", "description", "status", "priority", "parent_id", "deleted"):
        if name in changes:
            args[name] = changes[name]
    try:
        workitems.update(conn, ctx, m.parse_args(m.UpdateWorkItemArgs, args))  # type: ignore[arg-type]
    except (CycleDetectedError, DepthLimitError, ValidationError) as exc:  # raised before anything is written
        if "parent_id" not in args:
            raise
        # statusd's tree moved since the last import; the source's new parent no longer fits in it.
        report.warnings.append(f"{item.origin}: {item.source_id} keeps its statusd parent: {exc}")
        args.pop("parent_id")
        workitems.update(conn, ctx, m.parse_args(m.UpdateWorkItemArgs, args))  # type: ignore[arg-type]
    if changes:
        report.updated += 1
    else:
        report.unchanged += 1
    return str(row["id"])


def _record_conflict(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    item: PlannedItem,
    row: dict[str, Any],
    clashes: dict[str, Any],
    state: dict[str, Any],
    report: _Report,
) -> str:
    base = history.state_at(conn, row["id"], int(state.get("version") or 1))
    fields: dict[str, dict[str, Any]] = {}
    for name, value in clashes.items():
        if name.startswith("metadata."):
            key = name.partition(".")[2]
            merged = fields.setdefault(
                "metadata",
                {"base": base.get("metadata"), "local": dict(row["metadata"] or {}), "remote": row["metadata"]},
            )
            merged["local"][key] = value
        elif name == "deleted":
            fields["deleted_at"] = {
                "base": base.get("deleted_at"),
                "local": ctx.now if value else None,
                "remote": row["deleted_at"],
            }
        else:
            fields[name] = {"base": base.get(name), "local": value, "remote": row[name]}
        report.conflicts.append(
            {"source_id": item.source_id, "origin": item.origin, "item_id": row["id"], "field": name,
             "statusd_value": _current(row, [name])[name], "source_value": value}
        )  # fmt: skip
    meta = item.metadata
    local_op = {"via": "import", "source": meta["source"], "source_id": item.source_id, "path": meta["source_path"]}
    return imports.record_import_conflict(conn, ctx, row["id"], fields, local_op, row["version"])


def _delete_gone(conn: sqlite3.Connection, ctx: WriteContext, imp: Importer, row: dict[str, Any], origin: str) -> None:
    """The source deleted a record imported earlier: soft-delete its item unless statusd has an opinion."""
    state = (row["metadata"] or {}).get(IMPORT_STATE) or {}
    seen = dict(state.get("seen") or {})
    if row["deleted_at"] is not None or seen.get("deleted") != fingerprint(False):
        if row["deleted_at"] is None:
            imp.report.warnings.append(
                f"{origin}: deleted in the source; kept, its deleted state was changed in statusd"
            )
        return
    seen["deleted"] = fingerprint(True)
    meta = {IMPORT_STATE: {"version": row["version"] + 1, "seen": seen}}
    args = {"id": row["id"], "version": row["version"], "deleted": True, "metadata": meta, "actor": ctx.actor[:100]}
    import_runs.changing(conn, imp.run_id, WORK_ITEM.name, row)
    workitems.update(conn, ctx, m.parse_args(m.UpdateWorkItemArgs, args))  # type: ignore[arg-type]
    imp.report.deleted += 1
