"""``statusd import`` and ``statusd export``: moving work in from peer trackers and back out.

Import goes through the running daemon (``import_tasks``) so the write replicates and reaches the
mirror like any other; with no daemon running it opens the store itself and shows a progress bar.
Export reads the store file read-only, so it works with or without a daemon.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from statusd.cli_common import ConfigOpt, JsonOpt, _settings, app, err, out
from statusd.config import Settings
from statusd.errors import StatusdError

SOURCES = ("beads", "backlog", "taskmaster")


@app.command("import")
def import_(
    source: Annotated[str, typer.Argument(help="beads | backlog | taskmaster")],
    path: Annotated[Path, typer.Argument(help="the project, or its .beads/ / backlog/ / tasks.json")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would change; write nothing")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import work from beads, Backlog.md or Task Master (all or nothing; safe to re-run)."""
    if source not in SOURCES:
        err.print(f"statusd: unknown source {source!r}; use one of {', '.join(SOURCES)}", markup=False)
        raise typer.Exit(2)
    settings = _settings(config)
    target = path.expanduser().resolve()
    try:
        report = asyncio.run(_import(settings, source, target, dry_run))
    except StatusdError as exc:
        err.print(f"statusd: import failed, nothing was written: {exc.message}", markup=False, soft_wrap=True)
        if exc.details:
            err.print_json(data=exc.details)
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(data=report)
        return
    _print_report(report)


async def _import(settings: Settings, source: str, path: Path, dry_run: bool) -> dict[str, Any]:
    from statusd.client import DaemonNotRunningError, StatusdClient

    try:
        async with StatusdClient.connect(settings.socket_path, client_name="statusd-cli") as client:
            with err.status(f"importing {source} from {path} through the daemon…"):
                args = {"source": source, "path": str(path), "dry_run": dry_run}
                return await client.call("import_tasks", args)
    except DaemonNotRunningError:
        return await _import_offline(settings, source, path, dry_run)


async def _import_offline(settings: Settings, source: str, path: Path, dry_run: bool) -> dict[str, Any]:
    """No daemon: open the store here (the daemon's lock keeps the two from ever both writing)."""
    from rich.progress import Progress

    from statusd.config import machine_name
    from statusd.errors import ValidationError
    from statusd.store import Store, WriteContext
    from statusd.sync import importers
    from statusd.sync.importers import apply, runner

    try:
        plan = importers.read_plan(source, path)
    except (OSError, ValueError) as exc:
        raise ValidationError.one("path", str(exc)) from None
    replicated = settings.postgres_dsn() is not None  # queued in the outbox; the daemon pushes it on start
    store = Store(settings.store.path, machine=machine_name(), replicated=replicated, project=settings.project)
    async with store as st:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"importing {len(plan.items)} {source} records", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            options = apply.Options(dry_run=dry_run, progress=report)
            result = await runner.apply_plan(st, WriteContext(actor="statusd-cli"), plan, options)
    return result


def _print_report(report: dict[str, Any]) -> None:
    verb = "Would import" if report.get("dry_run") else "Imported"
    read = report.get("records_read", 0)
    deps = report.get("dependencies") or {}
    out.print(
        f"{verb} {report['source']} from {escape(str(report['path']))} ({read} record{'' if read == 1 else 's'}): "
        f"created {report['created']}, updated {report['updated']}, unchanged {report['unchanged']}, "
        + (f"deleted {report['deleted']}, " if report.get("deleted") else "")
        + f"skipped {report['skipped']}; dependencies created {deps.get('created', 0)}, "
        f"unchanged {deps.get('unchanged', 0)}",
        soft_wrap=True,  # one line per report line, whatever the terminal width: people grep these
    )
    for skip in report.get("skips", []):
        out.print(f"  skipped {skip['origin']}: {skip['reason']}", markup=False, soft_wrap=True)
    for conflict in report.get("conflicts", []):
        out.print(
            f"  conflict {conflict['source_id']} ({conflict['item_id'][:8]}) {conflict['field']}: "
            f"statusd has {conflict['statusd_value']!r}, source has {conflict['source_value']!r}; kept statusd's",
            markup=False,
            soft_wrap=True,
        )
    for warning in report.get("import_warnings", []):
        out.print(f"  warning: {warning}", markup=False, soft_wrap=True)
    for warning in report.get("warnings", []):  # the daemon's own (e.g. database_unavailable)
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)
    if report.get("dry_run"):
        out.print("Dry run: nothing was written.")


@app.command("export")
def export(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="beads-jsonl")],
    path: Annotated[Path | None, typer.Argument(help="file to write (default: standard output)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Export work items in another tracker's format (beads-jsonl: what ``bd import`` reads)."""
    if fmt != "beads-jsonl":
        err.print(f"statusd: unknown export format {fmt!r}; use beads-jsonl", markup=False)
        raise typer.Exit(2)
    from statusd.sync.importers import export as beads_export

    settings = _settings(config)
    store_path = Path(settings.store.path)
    if not store_path.exists():
        err.print(f"statusd: no store at {store_path}", markup=False)
        raise typer.Exit(1)
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        conn.execute("BEGIN")
        text = beads_export.dumps(beads_export.records(conn))
    finally:
        conn.close()
    if path is None:
        sys.stdout.write(text)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    err.print(f"Wrote {text.count(chr(10))} beads records to {path}", markup=False)
