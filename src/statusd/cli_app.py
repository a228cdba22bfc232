"""Typer commands behind :func:`statusd.cli.main` (everything except the light ``mcp`` bridge)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from statusd.config import Settings, load_settings
from statusd.errors import ConfigError, StatusdError, StoreLockedError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local-first project status for AI assistants.")
# Printed data is user text: no ":name:" emoji substitution; errors stay one line for journald and grep.
out = Console(emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="statusd.toml (default: ./statusd.toml, then user config dir)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a summary")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]statusd: bad configuration:[/] {escape(exc.message)}")
        raise typer.Exit(78) from None


def _call(settings: Settings, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    from statusd.client import StatusdClient

    async def go() -> dict[str, Any]:
        # Naming our store: a daemon of another project on the same socket refuses instead of serving.
        connecting = StatusdClient.connect(settings.socket_path, client_name="statusd-cli", store=settings.store.path)
        async with connecting as client:
            return await client.call(tool, args)

    try:
        return asyncio.run(go())
    except StatusdError as exc:
        err.print(f"[red]statusd: {exc.code}:[/] {escape(exc.message)}")
        if exc.details:
            err.print_json(data=exc.details)
        raise typer.Exit(1) from None


@app.command()
def run(config: ConfigOpt = None) -> None:
    """Run the daemon in the foreground (what the systemd unit / launchd agent starts)."""
    from statusd.daemon import logs
    from statusd.daemon.app import Daemon

    settings = _settings(config)
    logs.configure(settings.log.level)
    try:
        asyncio.run(Daemon(settings).run())
    except StoreLockedError as exc:
        err.print(f"[red]statusd: {escape(exc.message)}[/]")
        raise typer.Exit(75) from None
    except StatusdError as exc:  # e.g. a store written by a newer statusd
        err.print(f"[red]statusd: {escape(exc.message)}[/]")
        raise typer.Exit(78) from None


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
    full = _call(settings, "generate_full_status", {})
    if as_json:
        out.print_json(data=full)
        return
    vh, wi, sync = full["vendor_health"], full["active_work_items"], full["sync"]
    out.print(f"[bold]{escape(settings.project)}[/]  ({sync['mode']}, store {escape(str(sync['store_path']))})")
    out.print(f"Vendors: {vh['operational_count']}/{vh['total_vendors']} operational ({vh['operational_percentage']}%)")
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(wi["by_status"].items())) or "none"
    out.print(
        f"Work items: {wi['total_count']} ({by_status}); ready {wi['ready_count']}; archived {wi['archived_count']}"
    )
    out.print(
        f"Recent deployments: {len(full['recent_deployments'])}; pending enhancements: "
        f"{len(full['pending_enhancements'])}"
    )
    pending = sync["pending_outbox"]
    out.print(f"Sync: {sync['mode']}; pending {pending}; open conflicts {sync['open_conflicts']}")
    hub = sync.get("postgres")
    if hub:
        reach = "reachable" if hub["reachable"] else f"unreachable since {hub['down_since']}"
        out.print(f"Postgres: {reach}; last push {hub['last_push_at']}; last pull {hub['last_pull_at']}", markup=False)
    for warning in full.get("warnings", []):
        out.print(f"[yellow]warning:[/] {escape(str(warning))}")


@app.command()
def ready(
    config: ConfigOpt = None,
    item_type: Annotated[str | None, typer.Option("--type", help="only this item type")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List work items that can be picked up now."""
    args: dict[str, Any] = {"ready": True, "limit": 500}
    if item_type:
        args["item_type"] = item_type
    result = _call(_settings(config), "list_work_items", args)
    if as_json:
        out.print_json(data=result)
        return
    table = Table("id", "type", "priority", "title", box=None)
    for item in result["items"]:
        table.add_row(item["id"][:8], item["item_type"], item["priority"], escape(item["title"]))
    out.print(table if result["items"] else "Nothing is ready.")


@app.command()
def show(
    ident: Annotated[str, typer.Argument(metavar="ID")], config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one work item with its parents, children and dependencies."""
    item = _call(_settings(config), "query_work_item", {"id": ident, "include_children": True})
    if as_json:
        out.print_json(data=item)
        return
    chain = " › ".join(p["title"] for p in item["parent_chain"])
    # Titles and descriptions are user text: escape them, or "[WIP] x" would be read as markup.
    out.print(f"[bold]{escape(item['title'])}[/]  \\[{item['item_type']}, {item['status']}, {item['priority']}]")
    out.print(
        f"id {item['id']}  version {item['version']}  updated {item['updated_at']} by {item['updated_by']}",
        markup=False,
    )
    if chain:
        out.print(f"in: {chain}", markup=False)
    if item.get("claimed_by"):
        out.print(f"claimed by {item['claimed_by']} until {item['claim_expires_at']}", markup=False)
    if item.get("description"):
        out.print(item["description"], markup=False)
    for dep in item["dependencies"]:
        rel = dep["related_item"]
        out.print(f"{dep['direction']} {dep['type']}: {rel['title']} ({rel['id'][:8]}, {rel['status']})", markup=False)

    def walk(children: list[dict[str, Any]], indent: int) -> None:
        for child in children:
            out.print(f"{'  ' * indent}- {child['title']} ({child['id'][:8]}, {child['status']})", markup=False)
            walk(child["children"], indent + 1)

    walk(item.get("children", []), 0)


@app.command()
def call(
    tool: Annotated[str, typer.Argument(help="tool name, e.g. list_work_items")],
    arguments: Annotated[str, typer.Argument(help="JSON object of arguments")] = "{}",
    config: ConfigOpt = None,
) -> None:
    """Call any MCP tool and print its JSON result."""
    try:
        args = json.loads(arguments)
    except ValueError as exc:
        err.print(f"[red]statusd: arguments are not JSON:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if not isinstance(args, dict):
        err.print("[red]statusd: arguments must be a JSON object[/]")
        raise typer.Exit(2)
    result = _call(_settings(config), tool, args)
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


@app.command()
def conflicts(
    config: ConfigOpt = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="also show resolved conflicts")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List writes that clashed with another machine's (resolve with the resolve_conflict tool)."""
    result = _call(_settings(config), "list_conflicts", {"include_resolved": include_resolved})
    if as_json:
        out.print_json(data=result)
        return
    if not result["conflicts"]:
        out.print("No open conflicts." if not include_resolved else "No conflicts.")
        return
    table = Table("id", "entity", "field", "base", "local", "remote", "detected", "resolution", box=None)
    for c in result["conflicts"]:
        for name, values in c["fields"].items():
            table.add_row(
                c["id"][:8],
                f"{c['entity']} {c['entity_id'][:8]}",
                name,
                *(escape(json.dumps(values.get(k), ensure_ascii=False)[:40]) for k in ("base", "local", "remote")),
                c["detected_at"][:19],
                c["resolution"] or "open",
            )
    out.print(table)
    out.print('Resolve with: statusd call resolve_conflict \'{"id": "ID", "resolution": "keep_remote"}\'')


@app.command()
def sync(
    config: ConfigOpt = None,
    bootstrap: Annotated[bool, typer.Option("--bootstrap", help="fill an empty store from Postgres")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show replication state, or bootstrap a new machine's empty store from Postgres (daemon stopped)."""
    settings = _settings(config)
    if not bootstrap:
        result = _call(settings, "sync_status", {})
        if as_json:
            out.print_json(data=result)
            return
        hub = result.get("postgres") or {}
        out.print(f"mode: {result['mode']}  pending: {result['pending_outbox']}  conflicts: {result['open_conflicts']}")
        if hub:
            state = "reachable" if hub["reachable"] else f"unreachable since {hub['down_since']}"
            out.print(f"postgres: {state}; last push {hub['last_push_at']}; last pull {hub['last_pull_at']}")
            if hub.get("last_error"):
                out.print(f"last error: {escape(hub['last_error'])}")
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


from statusd import cli_transfer  # noqa: E402, F401 - registers ``import`` and ``export`` on ``app``
