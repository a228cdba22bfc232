"""Run an import as one store transaction with reconciliation checks, dry run, rollback and progress.

This is the engine behind ``statusd migrate`` / ``migrate_legacy_markdown`` (SPEC §8), written so
that any importer (beads, Backlog.md, Task Master, …) can reuse it. An importer is an
``ImportPlan``:

* ``total`` — how many steps ``apply`` will report, for progress;
* ``apply(conn, ctx, step)`` — insert or update everything, calling ``step()`` once per unit of
  work; it must be idempotent (re-running on the same source creates no duplicates);
* ``checks(conn)`` — after ``apply``, inside the same transaction, compare what the store now holds
  with the source: ``{name: {"source": n, "migrated": m, "match": bool, ...}}``;
* ``summary()`` — JSON-safe facts for the result (what was found, warnings).

``run_import`` commits only when every check matches and this is not a dry run; otherwise the
transaction is rolled back and nothing of it remains (``rollback_executed: true``). ``fail`` forces
a named check to fail (``"vendor_count"`` or ``"vendor_count_mismatch"``), so tests can prove the
rollback, as seed scenario 5 does. ``on_commit`` runs inside the transaction after the checks pass
(e.g. writing ``PATH.backup``); if it raises, everything rolls back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from statusd.errors import StatusdError
from statusd.models import iso
from statusd.store import Store, WriteContext

Progress = Callable[[int, int], None]


class ImportPlan(Protocol):
    total: int

    def apply(self, conn: sqlite3.Connection, ctx: WriteContext, step: Callable[[], None]) -> None: ...

    def checks(self, conn: sqlite3.Connection) -> dict[str, dict[str, Any]]: ...

    def summary(self) -> dict[str, Any]: ...


class _Rollback(StatusdError):
    """Undo the import's transaction and hand back its report (failed checks, or a dry run)."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("rolled back")
        self.result = result


def _forced(fail: str | None, name: str) -> bool:
    return fail is not None and fail.removesuffix("_mismatch") == name


def _preservation(checks: dict[str, dict[str, Any]]) -> float:
    source = sum(int(c["source"]) for c in checks.values() if "source" in c)
    migrated = sum(min(int(c["migrated"]), int(c["source"])) for c in checks.values() if "source" in c)
    return 100.0 if source == 0 else round(100.0 * migrated / source, 2)


def _next_microsecond(stamp: str) -> str:
    return iso(datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(microseconds=1))


def _transaction(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    plan: ImportPlan,
    dry_run: bool,
    fail: str | None,
    progress: Progress | None,
    on_commit: Callable[[], None] | None,
) -> dict[str, Any]:
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        # One transaction shares one clock reading, but the mirror orders entities by creation time:
        # each unit of work gets the next microsecond, so the file keeps the source's order.
        ctx.now = _next_microsecond(ctx.now)
        if progress is not None:
            progress(done, plan.total)

    plan.apply(conn, ctx, step)
    checks = plan.checks(conn)
    for name, check in checks.items():
        if _forced(fail, name):
            check["migrated"] = int(check.get("migrated", 0)) + 1 if "migrated" in check else check.get("migrated")
            check["match"] = False
            check["injected_failure"] = True
    failed = [name for name, check in checks.items() if not check.get("match", True)]
    result: dict[str, Any] = {
        **plan.summary(),
        "reconciliation": checks,
        "data_preservation_percentage": _preservation(checks),
        "dry_run": dry_run,
    }
    if failed:
        result.update(success=False, rollback_executed=True, errors=["validation_failed", *failed])
        raise _Rollback(result)
    if dry_run:
        result.update(success=True, rollback_executed=True, errors=[])
        raise _Rollback(result)  # a dry run does everything, then undoes it
    if on_commit is not None:
        on_commit()
    result.update(success=True, rollback_executed=False, errors=[])
    return result


async def run_import(
    store: Store,
    plan: ImportPlan,
    *,
    actor: str,
    dry_run: bool = False,
    fail: str | None = None,
    progress: Progress | None = None,
    on_commit: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``plan`` in one transaction on the store's writer; see the module docstring."""
    ctx = WriteContext(actor=actor, via="migration")
    try:
        return await store.write(_transaction, ctx, plan, dry_run, fail, progress, on_commit)
    except _Rollback as rb:
        return rb.result


def run_import_sync(
    store: Store,
    plan: ImportPlan,
    *,
    actor: str,
    dry_run: bool = False,
    fail: str | None = None,
    progress: Progress | None = None,
    on_commit: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``run_import`` on the calling thread (the CLI with no daemon running)."""
    ctx = WriteContext(actor=actor, via="migration")
    try:
        return store.write_sync(_transaction, ctx, plan, dry_run, fail, progress, on_commit)
    except _Rollback as rb:
        return rb.result
