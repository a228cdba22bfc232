"""The CLI commands that only talk to a running daemon, without pydantic, typer, rich or the SDK.

``status``, ``ready``, ``show``, ``conflicts``, ``sync`` and ``call`` must answer within 150 ms
(SPEC §11 P13); importing the MCP SDK alone takes over a second, typer and the validated
configuration a few hundred milliseconds more. :func:`try_fast` parses the plain forms of these
commands itself and answers through :class:`~statusd.quick_client.QuickClient`. Anything it is not
sure about — ``--help``, an unknown option, a missing config file, no daemon answering — returns
None and the full typer CLI runs instead, which validates the configuration and words the error.
The typer commands print through the same functions, so both paths give the same output.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from statusd.errors import StatusdError
from statusd.paths import daemon_paths_for, discover_config_file
from statusd.quick_client import DaemonNotRunningError, QuickClient

FAST_COMMANDS = frozenset({"status", "ready", "show", "conflicts", "sync", "call"})


class UsageError(StatusdError):
    """Arguments this fast path does not handle: the typer CLI takes over."""


def report_error(exc: StatusdError, err: TextIO | None = None) -> int:
    """Print a tool error the one way the CLI does; return the exit code (1)."""
    err = err or sys.stderr
    err.write(f"statusd: {exc.code}: {exc.message}\n")
    if exc.details:
        err.write(json.dumps(exc.details, indent=2, ensure_ascii=False) + "\n")
    return 1


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = [headers, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    return "\n".join(" " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _job_lines(sync: dict[str, Any], label: str) -> list[str]:
    jobs = sync.get("jobs") or {}
    return [
        f"{label} {name}: last run {job.get('last_run_at')} ({job.get('outcome')}); next {job.get('next_run_at')}"
        for name, job in sorted(jobs.items())
    ]


def show_status(call: Callable[..., dict[str, Any]], project: str, as_json: bool) -> None:
    full = call("generate_full_status", {})
    if as_json:
        _json(full)
        return
    vh, wi, sync = full["vendor_health"], full["active_work_items"], full["sync"]
    lines = [
        f"{project}  ({sync['mode']}, store {sync['store_path']})",
        f"Vendors: {vh['operational_count']}/{vh['total_vendors']} operational ({vh['operational_percentage']}%)",
        f"Work items: {wi['total_count']} ("
        + (", ".join(f"{k} {v}" for k, v in sorted(wi["by_status"].items())) or "none")
        + f"); ready {wi['ready_count']}; archived {wi['archived_count']}",
        f"Recent deployments: {len(full['recent_deployments'])}; "
        f"pending enhancements: {len(full['pending_enhancements'])}",
        f"Sync: {sync['mode']}; pending {sync['pending_outbox']}; open conflicts {sync['open_conflicts']}",
    ]
    hub = sync.get("postgres")
    if hub:
        reach = "reachable" if hub["reachable"] else f"unreachable since {hub['down_since']}"
        lines.append(f"Postgres: {reach}; last push {hub['last_push_at']}; last pull {hub['last_pull_at']}")
    mirror = sync.get("mirror") or {}
    if mirror.get("enabled"):
        reason = f": {mirror['reason']}" if mirror.get("reason") else ""
        lines.append(f"Mirror: {mirror['state']} ({mirror['path']}){reason}")
    lines += _job_lines(sync, "Job")
    lines += [f"warning: {w}" for w in full.get("warnings", [])]
    sys.stdout.write("\n".join(lines) + "\n")


def show_ready(call: Callable[..., dict[str, Any]], item_type: str | None, as_json: bool) -> None:
    args: dict[str, Any] = {"ready": True, "limit": 500}
    if item_type:
        args["item_type"] = item_type
    result = call("list_work_items", args)
    if as_json:
        _json(result)
        return
    rows = [[i["id"][:8], i["item_type"], i["priority"], i["title"]] for i in result["items"]]
    sys.stdout.write((_table(["id", "type", "priority", "title"], rows) if rows else "Nothing is ready.") + "\n")


def show_item(call: Callable[..., dict[str, Any]], ident: str, as_json: bool) -> None:
    item = call("query_work_item", {"id": ident, "include_children": True})
    if as_json:
        _json(item)
        return
    lines = [
        f"{item['title']}  [{item['item_type']}, {item['status']}, {item['priority']}]",
        f"id {item['id']}  version {item['version']}  updated {item['updated_at']} by {item['updated_by']}",
    ]
    chain = " › ".join(p["title"] for p in item["parent_chain"])
    if chain:
        lines.append(f"in: {chain}")
    if item.get("claimed_by"):
        lines.append(f"claimed by {item['claimed_by']} until {item['claim_expires_at']}")
    if item.get("description"):
        lines.append(item["description"])
    for dep in item["dependencies"]:
        rel = dep["related_item"]
        lines.append(f"{dep['direction']} {dep['type']}: {rel['title']} ({rel['id'][:8]}, {rel['status']})")

    def walk(children: list[dict[str, Any]], indent: int) -> None:
        for child in children:
            lines.append(f"{'  ' * indent}- {child['title']} ({child['id'][:8]}, {child['status']})")
            walk(child["children"], indent + 1)

    walk(item.get("children", []), 0)
    sys.stdout.write("\n".join(lines) + "\n")


def show_conflicts(call: Callable[..., dict[str, Any]], include_resolved: bool, as_json: bool) -> None:
    result = call("list_conflicts", {"include_resolved": include_resolved})
    if as_json:
        _json(result)
        return
    if not result["conflicts"]:
        sys.stdout.write(("No conflicts." if include_resolved else "No open conflicts.") + "\n")
        return
    rows = []
    for c in result["conflicts"]:
        for name, values in c["fields"].items():
            shown = [json.dumps(values.get(k), ensure_ascii=False)[:40] for k in ("base", "local", "remote")]
            rows.append([c["id"][:8], f"{c['entity']} {c['entity_id'][:8]}", name, *shown,
                         c["detected_at"][:19], c["resolution"] or "open"])  # fmt: skip
    headers = ["id", "entity", "field", "base", "local", "remote", "detected", "resolution"]
    lines = [_table(headers, rows)]
    lines += [f"{c['id'][:8]} ({c['kind']}): {c['reason']}" for c in result["conflicts"] if c.get("reason")]
    lines.append('Resolve with: statusd call resolve_conflict \'{"id": "ID", "resolution": "keep_remote"}\'')
    if any(c["kind"] == "rejected" for c in result["conflicts"]):
        lines.append("Refused operations: resolution discard (keep the hub's state), retry, or custom with values.")
    sys.stdout.write("\n".join(lines) + "\n")


def show_sync(call: Callable[..., dict[str, Any]], as_json: bool) -> None:
    result = call("sync_status", {})
    if as_json:
        _json(result)
        return
    lines = [
        f"mode: {result['mode']}  pending: {result['pending_outbox']}  conflicts: {result['open_conflicts']}"
        f"  (refused operations: {result.get('rejected_operations', 0)})"
    ]
    hub = result.get("postgres") or {}
    if hub:
        state = "reachable" if hub["reachable"] else f"unreachable since {hub['down_since']}"
        lines.append(f"postgres: {state}; last push {hub['last_push_at']}; last pull {hub['last_pull_at']}")
        if hub.get("last_error"):
            lines.append(f"last error: {hub['last_error']}")
    lines += _job_lines(result, "job")
    sys.stdout.write("\n".join(lines) + "\n")


def parse_call_arguments(text: str) -> dict[str, Any]:
    """The JSON object of ``statusd call``; raises ValueError with the message the CLI prints."""
    try:
        args = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"arguments are not JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ValueError("arguments must be a JSON object")
    return args


def show_call(call: Callable[..., dict[str, Any]], tool: str, args: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(call(tool, args), indent=2, ensure_ascii=False) + "\n")


# --- the fast dispatcher ------------------------------------------------------------------------


def _parse(args: list[str], flags: set[str], options: set[str], positionals: int) -> tuple[dict[str, Any], list[str]]:
    found: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg in flags:
            found[arg] = True
        elif name in options:
            if not eq:
                i += 1
                if i >= len(args):
                    raise UsageError(arg)
                value = args[i]
            found[name] = value
        elif arg.startswith("-") and arg != "-":
            raise UsageError(arg)  # --help, -h, or something only typer knows how to word
        else:
            rest.append(arg)
        i += 1
    if len(rest) > positionals:
        raise UsageError(rest[positionals])
    return found, rest


def _project(config: Path | None) -> str:
    data: dict[str, Any] = {}
    if config is not None:
        with open(config, "rb") as fh:
            data = tomllib.load(fh)
    root = (config.parent if config is not None else Path.cwd()).expanduser().absolute()
    return str(os.environ.get("STATUSD_PROJECT") or data.get("project") or root.name)


def try_fast(argv: list[str]) -> int | None:
    """Run one of FAST_COMMANDS and return its exit code, or None to let the typer CLI run it."""
    if not argv or argv[0] not in FAST_COMMANDS:
        return None
    command, args = argv[0], argv[1:]
    try:
        spec: dict[str, tuple[set[str], int]] = {
            "status": ({"--json"}, 0),
            "ready": ({"--json"}, 0),
            "show": ({"--json"}, 1),
            "conflicts": ({"--json", "--all"}, 0),
            "sync": ({"--json"}, 0),
            "call": (set(), 2),
        }
        flags, positionals = spec[command]
        opts, rest = _parse(args, flags, {"--config", "-c", "--type"} if command == "ready" else {"--config", "-c"},
                            positionals)  # fmt: skip
        if (command == "show" and len(rest) != 1) or (command == "call" and not rest):
            return None
        raw = opts.get("--config", opts.get("-c"))
        config = Path(raw) if raw is not None else discover_config_file()
        if config is not None and not config.is_file():
            return None
        socket_path, store_path = daemon_paths_for(config)
        as_json = bool(opts.get("--json"))
        if command == "call":
            try:
                call_args = parse_call_arguments(rest[1] if len(rest) > 1 else "{}")
            except ValueError as exc:
                sys.stderr.write(f"statusd: {exc}\n")
                return 2
        project = _project(config) if command == "status" else ""
    except (UsageError, tomllib.TOMLDecodeError, OSError):
        return None
    # Naming our store: a daemon of another project on the same socket refuses instead of serving.
    client = QuickClient(socket_path, client_name="statusd-cli", store=store_path)
    try:
        client.connect()
    except DaemonNotRunningError:
        return None  # the full CLI checks the configuration first, then says the daemon is not running
    except StatusdError as exc:
        return report_error(exc)
    try:
        with client:
            if command == "status":
                show_status(client.call, project, as_json)
            elif command == "ready":
                show_ready(client.call, opts.get("--type"), as_json)
            elif command == "show":
                show_item(client.call, rest[0], as_json)
            elif command == "conflicts":
                show_conflicts(client.call, bool(opts.get("--all")), as_json)
            elif command == "sync":
                show_sync(client.call, as_json)
            else:
                show_call(client.call, rest[0], call_args)
    except StatusdError as exc:  # after connecting, never run again: a write may have been applied
        return report_error(exc)
    return 0
