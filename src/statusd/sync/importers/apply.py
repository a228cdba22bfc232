"""Apply a :class:`Plan` to the store: one writer transaction, all or nothing.

The narrow interface is ``run(conn, ctx, plan, options) -> report``, a transaction body for
``Store.write`` (``apply_plan`` runs it and turns a dry run's rollback back into its report). The
shared migration machinery can later wrap exactly that: dry run, failure injection and progress
are options here, so nothing else is needed from outside.

Re-import is keyed on ``(metadata.source, metadata.source_key)``. Each item remembers, in
``metadata.import_state``, a fingerprint of every field as the import last wrote it and the
version that write produced. A field is written again only when the source changed it; when
statusd changed it too (and differently), statusd's value stays and the clash is recorded as a
conflict (entity ``work_item``, kind ``import``; ``local`` is the source's value, ``remote`` the
store's, ``base`` what the previous import wrote), settled with ``resolve_conflict`` like any other.
"""

from __future__ import annotations

import inspect
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statusd import models as m
from statusd.errors import CycleDetectedError, DepthLimitError, StatusdError, ValidationError
from statusd.models import MAX_DEPTH
from statusd.store import entities as ent
from statusd.store import history, imports, workitems
from statusd.store.db import WriteContext
from statusd.store.entities import WORK_ITEM
from statusd.sync.importers import edges
from statusd.sync.importers.plan import IMPORT_STATE, Plan, PlannedItem, fingerprint

Progress = Callable[[int, int], None]
YIELD_EVERY = 250


class ImportAborted(StatusdError):
    """A failure injected for tests, or the caller's cancellation, ended the import; nothing was written."""


class DryRun(StatusdError):
    """Raised inside the import transaction to roll it back; carries the report (never leaves apply_plan)."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__("dry run")
        self.report = report


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


def run(conn: sqlite3.Connection, ctx: WriteContext, plan: Plan, options: Options) -> dict[str, Any]:
    """The transaction body; with ``dry_run`` it raises to roll back (see :func:`apply_plan`)."""
    ctx.via = "migration"
    report = _Report(warnings=list(plan.warnings))
    existing = _existing(conn, plan.source)
    ids: dict[str, str] = {}
    depths: dict[str, int] = {}  # depth of every item this run placed, so children need no lookup
    total = len(plan.items) + len(plan.edges)
    step = max(1, total // 100)
    for done, item in enumerate(plan.items, start=1):
        if options.fail_after is not None and done > options.fail_after:
            raise ImportAborted(
                f"import aborted: failure injected after {options.fail_after} items; nothing was written"
            )
        ids[item.key] = _apply_item(conn, ctx, item, existing.get(item.key), ids, depths, report)
        if done % YIELD_EVERY == 0:
            time.sleep(0)  # hand the GIL to the loop thread: other clients' reads go on during an import
            if ctx.cancel_requested:
                raise ImportAborted("import cancelled by the caller; nothing was written")
        if options.progress is not None and (done % step == 0 or done == len(plan.items)):
            options.progress(done, total)
    on_edge = None
    if options.progress is not None:
        progress, offset = options.progress, len(plan.items)

        def on_edge(n: int) -> None:
            if n % step == 0:
                progress(offset + n, total)

    counts = edges.apply(conn, ctx, plan.edges, ids, report.warnings, on_edge)
    report.edges_created, report.edges_unchanged = counts
    planned = {item.key for item in plan.items}
    for key, origin in plan.gone:
        row = existing.get(key)
        if row is not None and key not in planned:
            _delete_gone(conn, ctx, row, origin, report)
    if options.progress is not None:
        options.progress(total, total)
    result = {
        "source": plan.source,
        "path": plan.path,
        "dry_run": options.dry_run,
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
    if options.dry_run:
        raise DryRun(result)
    return result


def apply_plan(write: Callable[..., Any], ctx: WriteContext, plan: Plan, options: Options) -> Any:
    """Call ``write(run, ctx, plan, options)`` (``Store.write`` or ``write_sync``) and turn a dry run's
    rollback back into its report. Awaitable when ``write`` is."""
    try:
        outcome = write(run, ctx, plan, options)
    except DryRun as dry:
        return dry.report
    if inspect.isawaitable(outcome):

        async def finish() -> dict[str, Any]:
            try:
                return dict(await outcome)
            except DryRun as dry:
                return dry.report

        return finish()
    return outcome


def _existing(conn: sqlite3.Connection, source: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in imports.items_from_source(conn, source):
        key = (row["metadata"] or {}).get("source_key")
        if isinstance(key, str):
            out.setdefault(key, row)
    return out


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
    item: PlannedItem,
    row: dict[str, Any] | None,
    ids: dict[str, str],
    depths: dict[str, int],
    report: _Report,
) -> str:
    # The source's intent (remembered as seen); where statusd can place a new item may differ.
    desired = _desired(item, ids.get(item.parent_key) if item.parent_key is not None else None)
    if row is not None:
        return _reconcile(conn, ctx, item, row, desired, report)
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
    ident = str(ent.insert(conn, ctx, WORK_ITEM, values)["id"])
    if not item.deleted:
        depths[ident] = depth
    return ident


def _reconcile(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    item: PlannedItem,
    row: dict[str, Any],
    desired: dict[str, Any],
    report: _Report,
) -> str:
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
    if clashes:
        _record_conflict(conn, ctx, item, row, clashes, state, report)
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
) -> None:
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
    imports.record_import_conflict(conn, ctx, row["id"], fields, local_op, row["version"])


def _delete_gone(
    conn: sqlite3.Connection, ctx: WriteContext, row: dict[str, Any], origin: str, report: _Report
) -> None:
    """The source deleted a record imported earlier: soft-delete its item unless statusd has an opinion."""
    state = (row["metadata"] or {}).get(IMPORT_STATE) or {}
    seen = dict(state.get("seen") or {})
    if row["deleted_at"] is not None or seen.get("deleted") != fingerprint(False):
        if row["deleted_at"] is None:
            report.warnings.append(f"{origin}: deleted in the source; kept, its deleted state was changed in statusd")
        return
    seen["deleted"] = fingerprint(True)
    meta = {IMPORT_STATE: {"version": row["version"] + 1, "seen": seen}}
    args = {"id": row["id"], "version": row["version"], "deleted": True, "metadata": meta, "actor": ctx.actor[:100]}
    workitems.update(conn, ctx, m.parse_args(m.UpdateWorkItemArgs, args))  # type: ignore[arg-type]
    report.deleted += 1
