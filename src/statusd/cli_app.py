"""Typer commands behind :func:`statusd.cli.main` (everything except the light ``mcp`` bridge)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from statusd import cli_fast as fast
from statusd.cli_common import ConfigOpt, JsonOpt, _settings, app, err, out
from statusd.config import Settings
from statusd.errors import StatusdError, StoreLockedError

__all__ = ["app"]


def _ask(settings: Settings, show: Callable[[Callable[..., dict[str, Any]]], None]) -> None:
    """Run one daemon-facing command (the same code as the fast path of :mod:`statusd.cli_fast`)."""
    from statusd.cli_fast import report_error
    from statusd.quick_client import QuickClient

    try:
        # Naming our store: a daemon of another project on the same socket refuses instead of serving.
        with QuickClient(settings.socket_path, client_name="statusd-cli", store=settings.store.path) as client:
            show(client.call)
    except StatusdError as exc:
        raise typer.Exit(report_error(exc)) from None


@app.command()
def run(config: ConfigOpt = None) -> None:
    """Run the daemon in the foreground (what the systemd unit / launchd agent starts)."""
    from statusd.cli_run import run_daemon

    raise typer.Exit(run_daemon(config))


@app.command()
def mcp(
    config: ConfigOpt = None,
    socket: Annotated[Path | None, typer.Option(help="daemon socket (default: from the configuration)")] = None,
    client: Annotated[str | None, typer.Option(help="client name recorded as created_by/updated_by")] = None,
) -> None:
    """Bridge a stdio MCP client to the daemon (normally dispatched before this module loads)."""
    from statusd.daemon import bridge

    argv = [*(["--config", str(config)] if config else []), *(["--socket", str(socket)] if socket else [])]
    argv += ["--client", client] if client else []
    raise typer.Exit(bridge.main(argv))


@app.command()
def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Summarise the project and the daemon's sync state."""
    settings = _settings(config)
    _ask(settings, lambda call: fast.show_status(call, settings.project, as_json))


@app.command()
def ready(
    config: ConfigOpt = None,
    item_type: Annotated[str | None, typer.Option("--type", help="only this item type")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List work items that can be picked up now."""
    _ask(_settings(config), lambda call: fast.show_ready(call, item_type, as_json))


@app.command()
def show(
    ident: Annotated[str, typer.Argument(metavar="ID")], config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one work item with its parents, children and dependencies."""
    _ask(_settings(config), lambda call: fast.show_item(call, ident, as_json))


@app.command()
def call(
    tool: Annotated[str, typer.Argument(help="tool name, e.g. list_work_items")],
    arguments: Annotated[str, typer.Argument(help="JSON object of arguments")] = "{}",
    config: ConfigOpt = None,
) -> None:
    """Call any MCP tool and print its JSON result."""
    try:
        args = fast.parse_call_arguments(arguments)
    except ValueError as exc:
        err.print(f"statusd: {exc}", markup=False)
        raise typer.Exit(2) from None
    _ask(_settings(config), lambda c: fast.show_call(c, tool, args))


@app.command()
def conflicts(
    config: ConfigOpt = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="also show resolved conflicts")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List writes that clashed with another machine's (resolve with the resolve_conflict tool)."""
    _ask(_settings(config), lambda call: fast.show_conflicts(call, include_resolved, as_json))


@app.command()
def migrate(
    path: Annotated[Path, typer.Argument(help="the status file to import, e.g. .project_status.md")],
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be imported; change nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a legacy or free-form status file (one transaction, five reconciliation checks, PATH.backup)."""
    settings = _settings(config)
    path = path.expanduser().absolute()
    try:
        result = _migrate_here(settings, path, dry_run)
    except StoreLockedError:  # the daemon owns the store: it runs the migration
        answer: dict[str, Any] = {}
        args = {"path": str(path), "dry_run": dry_run}
        _ask(settings, lambda call: answer.update(call("migrate_legacy_markdown", args)))
        result = answer
    except StatusdError as exc:
        err.print(f"statusd: {exc.message}", soft_wrap=True, markup=False)
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(data=result)
    else:
        _print_migration(result)
    raise typer.Exit(0 if result.get("success") else 1)


def _migrate_here(settings: Settings, path: Path, dry_run: bool) -> dict[str, Any]:
    from rich.progress import Progress

    from statusd.config import machine_name
    from statusd.store import Store
    from statusd.sync.migrate import migrate_path_sync

    store = Store(settings.store.path, machine=machine_name(), replicated=settings.replicated, project=settings.project)
    store.open()
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("importing", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            mirror_path = settings.mirror.path if settings.mirror.enabled else None
            return migrate_path_sync(store, path, mirror_path=mirror_path, dry_run=dry_run, progress=report)
    finally:
        store.close()


def _print_migration(result: dict[str, Any]) -> None:
    from rich.table import Table

    verdict = "dry run (nothing changed)" if result.get("dry_run") else "migrated"
    if not result.get("success"):
        verdict = "FAILED, rolled back (nothing imported, file untouched)"
    out.print(f"{result.get('path')}: {verdict}", markup=False)
    table = Table("check", "source", "migrated", "match", box=None)
    for name, check in result.get("reconciliation", {}).items():
        match = "yes" if check["match"] else "NO"
        if "source" in check:
            table.add_row(name, str(check["source"]), str(check["migrated"]), match)
        else:
            table.add_row(name, "", f"{check.get('completeness_percentage')}% complete", match)
    out.print(table)
    out.print(f"data preserved: {result.get('data_preservation_percentage')}%", markup=False)
    if result.get("backup"):
        out.print(f"backup: {result['backup']}", markup=False)
    for warning in result.get("migration_warnings", []):
        out.print(f"warning: {warning}", markup=False, style="yellow")
    for line in result.get("abbreviated_commit_hashes", []):
        out.print(f"abbreviated commit hash: {line}", markup=False)


@app.command()
def sync(
    config: ConfigOpt = None,
    bootstrap: Annotated[bool, typer.Option("--bootstrap", help="fill an empty store from Postgres")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show replication state, or bootstrap a new machine's empty store from Postgres (daemon stopped)."""
    settings = _settings(config)
    if not bootstrap:
        _ask(settings, lambda call: fast.show_sync(call, as_json))
        return
    if settings.postgres_dsn() is None:
        err.print("statusd: no postgres.dsn configured; nothing to bootstrap from", soft_wrap=True)
        raise typer.Exit(2)
    try:
        copied = asyncio.run(_bootstrap(settings))
    except StatusdError as exc:
        err.print(f"statusd: {exc.message}", soft_wrap=True, markup=False)
        raise typer.Exit(1) from None
    out.print(f"Bootstrapped {copied} entities from Postgres into {settings.store.path}.")


async def _bootstrap(settings: Settings) -> int:
    from rich.progress import Progress

    from statusd.store import Store
    from statusd.sync.errors import describe
    from statusd.sync.replicator import Replicator

    dsn = settings.postgres_dsn()
    assert dsn is not None
    async with Store(settings.store.path, replicated=True, project=settings.project) as store:
        rep = Replicator(store, dsn=dsn, password=settings.postgres_password(), schema=settings.postgres.schema_name)
        if rep.local_has_data():
            raise StatusdError(f"the store {settings.store.path} already has data; the daemon keeps it in sync itself")
        try:
            await rep.connect()
        except Exception as exc:
            raise StatusdError(f"cannot reach Postgres: {describe(exc, settings.postgres_password())}") from None
        try:
            with Progress(console=err) as progress:
                task = progress.add_task("copying entities", total=None)

                def report(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                return await rep.bootstrap(progress=report)
        finally:
            await rep.close()


service_app = typer.Typer(no_args_is_help=True, help="Install statusd as a systemd user service or launchd agent.")
app.add_typer(service_app, name="service")
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="print what would be written and run; change nothing")]


def _config_file(config: Path | None) -> Path:
    from statusd.paths import discover_config_file

    path = config or discover_config_file()
    if path is None:
        err.print("statusd: no statusd.toml here or in the user config dir; copy config.example.toml", markup=False)
        raise typer.Exit(78)
    _settings(path)  # a unit that would exit 78 at once is not worth installing
    return path


def _print_plan(plan: Any) -> None:
    if plan.text:
        out.print(f"# {plan.path}", markup=False, highlight=False)
        sys.stdout.write(plan.text)
        sys.stdout.flush()
    else:
        out.print(f"would remove {plan.path}", markup=False, highlight=False)
    for cmd in plan.commands:
        out.print(f"would run: {' '.join(cmd)}", markup=False, highlight=False)


@service_app.command("install")
def service_install(config: ConfigOpt = None, dry_run: DryRunOpt = False) -> None:
    """Write and enable a unit that runs this statusd for this project's config."""
    from statusd import service_units as su

    try:
        plan = su.plan_install(_config_file(config))
        if dry_run:
            _print_plan(plan)
            return
        for note in su.install(plan):
            out.print(note, markup=False, highlight=False)
    except su.ServiceError as exc:
        err.print(f"statusd: {exc}", markup=False)
        raise typer.Exit(1) from None


@service_app.command("uninstall")
def service_uninstall(config: ConfigOpt = None, dry_run: DryRunOpt = False) -> None:
    """Stop, disable and remove this project's unit."""
    from statusd import service_units as su
    from statusd.paths import discover_config_file

    path = config or discover_config_file() or Path.cwd() / "statusd.toml"
    plan = su.plan_uninstall(path)
    if dry_run:
        _print_plan(plan)
        return
    for note in su.uninstall(plan):
        out.print(note, markup=False, highlight=False)


@app.command()
def doctor(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Check configuration, socket, store, Postgres, mirror and the installed service; say what to fix."""
    from statusd import doctor as doc

    checks = doc.run(config)
    if as_json:
        out.print_json(data=doc.as_json(checks))
    else:
        marks = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}
        for c in checks:
            out.print(f"{marks[c.status]} {c.name:<20} {escape(c.detail)}", highlight=False, soft_wrap=True)
            if c.fix and c.status in ("warn", "fail"):
                out.print(f"     {'':<20} → {escape(c.fix)}", highlight=False, soft_wrap=True)
        out.print("healthy" if doc.healthy(checks) else "[red]unhealthy[/]: fix the FAIL lines above", highlight=False)
    raise typer.Exit(0 if doc.healthy(checks) else 1)


from statusd import cli_transfer  # noqa: E402, F401 - registers ``import`` and ``export`` on ``app``
