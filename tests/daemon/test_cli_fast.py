"""The fast CLI path (SPEC §11 P13): no SDK, typer, rich or pydantic import; same output as the full CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from mcp_support import statusd_cmd

from daemon_support import DaemonProcess, running_daemon

HEAVY = ("mcp", "mcp_types", "pydantic", "pydantic_settings", "typer", "rich", "anyio", "asyncpg", "apscheduler")

# The full typer CLI, skipping the fast dispatcher of statusd.cli.main.
FULL_CLI = "import sys; from statusd.cli_app import app; app(args=sys.argv[1:], prog_name='statusd')"


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


async def both(daemon: Any, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    full_args = [*args, "--config", str(daemon.config_path)]
    fast, full = await asyncio.gather(
        asyncio.to_thread(run, statusd_cmd(*full_args)),
        asyncio.to_thread(run, [sys.executable, "-c", FULL_CLI, *full_args]),
    )
    return fast, full


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon for the module: every test here only reads (or fails to write)."""
    with running_daemon(tmp_path_factory.mktemp("cli-fast") / "project") as proc:
        yield proc


@pytest.fixture(scope="module")
def project(daemon: DaemonProcess) -> dict[str, Any]:
    async def make() -> dict[str, Any]:
        async with daemon.client("claude-code") as c:
            parent = await c.call("create_work_item", item_type="project", title="Project [A] :x:")
            first = await c.call("create_work_item", item_type="task", title="Write docs", parent_id=parent["id"])
            await c.call("create_vendor", name="vendor_a")
        return {"parent": parent, "first": first}

    return asyncio.run(make())


def imported_modules(importtime_stderr: str) -> set[str]:
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("command", [["status"], ["ready"], ["sync"], ["conflicts"], ["call", "sync_status"]])
async def test_daemon_commands_import_no_heavy_module(daemon: Any, project: dict[str, Any], command: list[str]) -> None:
    argv = [sys.executable, "-X", "importtime", "-m", "statusd.cli", *command, "--config", str(daemon.config_path)]
    done = await asyncio.to_thread(run, argv)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = imported_modules(done.stderr)
    assert "statusd" in modules, "importtime output was parsed"
    assert not modules & set(HEAVY), f"the fast path imported {sorted(modules & set(HEAVY))}"


async def test_show_imports_no_heavy_module(daemon: Any, project: dict[str, Any]) -> None:
    argv = [sys.executable, "-X", "importtime", "-m", "statusd.cli", "show", project["first"]["id"][:8], "--config",
            str(daemon.config_path)]  # fmt: skip
    done = await asyncio.to_thread(run, argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not imported_modules(done.stderr) & set(HEAVY)


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["ready"],
        ["ready", "--type", "task", "--json"],
        ["conflicts"],
        ["conflicts", "--all", "--json"],
        ["sync"],
        ["sync", "--json"],
        ["call", "query_vendor_status", '{"name": "VENDOR_A"}'],
    ],
)
async def test_fast_and_full_cli_print_the_same(daemon: Any, project: dict[str, Any], args: list[str]) -> None:
    fast, full = await both(daemon, *args)
    assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
    if "--json" in args or args[0] == "call":
        fast_data, full_data = json.loads(fast.stdout), json.loads(full.stdout)
        for data in (fast_data, full_data):  # timestamps of the report itself differ between two calls
            data.pop("generated_at", None)
            if isinstance(data.get("sync"), dict):
                data["sync"].pop("generated_at", None)
        assert fast_data == full_data
    else:
        assert fast.stdout == full.stdout
    assert fast.stderr == full.stderr == ""


async def test_show_and_errors_are_the_same_on_both_paths(daemon: Any, project: dict[str, Any]) -> None:
    ident = project["first"]["id"][:8]
    fast, full = await both(daemon, "show", ident)
    assert fast.returncode == full.returncode == 0
    assert fast.stdout == full.stdout and "in: Project [A] :x:" in fast.stdout
    for args in (["show", "ffffff00"], ["call", "update_work_item", json.dumps({"id": ident, "version": 9})]):
        fast, full = await both(daemon, *args)
        assert fast.returncode == full.returncode == 1
        assert fast.stderr == full.stderr and fast.stderr.startswith("statusd: ")
        assert "Traceback" not in fast.stderr
    fast, full = await both(daemon, "call", "sync_status", "{nope")
    assert fast.returncode == full.returncode == 2
    assert "arguments are not JSON" in fast.stderr and "arguments are not JSON" in full.stderr


async def test_help_and_unknown_options_fall_back_to_the_full_cli(daemon: Any) -> None:
    helped = await asyncio.to_thread(run, statusd_cmd("status", "--help"))
    assert helped.returncode == 0 and "--json" in helped.stdout
    wrong = await asyncio.to_thread(run, statusd_cmd("status", "--bogus", "--config", str(daemon.config_path)))
    assert wrong.returncode == 2 and "--bogus" in wrong.stderr
