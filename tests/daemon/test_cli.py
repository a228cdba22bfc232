"""The ``statusd`` commands that talk to a running daemon (SPEC §10).

The commands run in this process against the in-process daemon; one test runs the real console
script as a subprocess, so the entry point itself stays proven.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from typing import Any

import pytest
from mcp_support import statusd_cmd

_CLI_LOCK = threading.Lock()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``statusd ARGS`` in this process (typer's runner): the same commands without an interpreter start.

    One at a time: the runner swaps ``sys.stdout``/``sys.stderr`` for the whole process. An exception
    that escapes the command fails the test (a real run would have printed a traceback).
    """
    from typer.testing import CliRunner

    from statusd.cli_app import app

    with _CLI_LOCK:
        result = CliRunner().invoke(app, list(args), prog_name="statusd")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["statusd", *args], result.exit_code, result.stdout, result.stderr)


async def statusd(daemon: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``statusd ARGS --config <the daemon's config>`` (in this process, in a worker thread)."""
    return await asyncio.to_thread(run_cli, *args, "--config", str(daemon.config_path))


# User text that rich would otherwise read as markup ("[WIP]") or an emoji code (":x:").
SECOND_TITLE = "[WIP] Ship docs :x:"


@pytest.fixture
async def project(daemon) -> dict[str, Any]:
    """A small project: a parent with two tasks (the second waits for the first) and two vendors."""
    async with daemon.client("claude-code") as c:
        parent = await c.call("create_work_item", item_type="project", title="Project A")
        first = await c.call("create_work_item", item_type="task", title="Write docs", parent_id=parent["id"])
        second = await c.call(
            "create_work_item", item_type="task", title=SECOND_TITLE, parent_id=parent["id"], priority="high"
        )
        await c.call("add_dependency", work_item_id=second["id"], depends_on_id=first["id"])
        vendor = await c.call("create_vendor", name="vendor_a")
        await c.call("update_vendor_status", name="vendor_a", version=vendor["version"], status="operational")
        await c.call("create_vendor", name="vendor_b")
    return {"parent": parent, "first": first, "second": second}


async def test_read_commands(daemon, project):
    first, second, parent = project["first"], project["second"], project["parent"]
    # Independent reads: run them side by side (each is a fresh interpreter, most of the cost).
    status, status_json, ready, ready_json, show, show_parent, unknown = await asyncio.gather(
        statusd(daemon, "status"),
        statusd(daemon, "status", "--json"),
        statusd(daemon, "ready"),
        statusd(daemon, "ready", "--json", "--type", "task"),
        statusd(daemon, "show", second["id"][:8]),
        statusd(daemon, "show", parent["id"][:8]),
        statusd(daemon, "show", "ffffff00"),
    )

    # statusd status: a human summary
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("test ")  # the project name from the config
    assert "standalone" in status.stdout
    assert "Vendors: 1/2 operational (50.0%)" in status.stdout
    assert "Work items: 3 (active 3); ready 2; archived 0" in status.stdout
    assert "Sync: standalone; pending 0; open conflicts 0" in status.stdout

    # statusd status --json: the full report
    assert status_json.returncode == 0, status_json.stderr
    report = json.loads(status_json.stdout)
    assert report["success"] is True
    assert report["vendor_health"] == {
        "total_vendors": 2,
        "operational_count": 1,
        "broken_count": 1,
        "operational_percentage": 50.0,
    }
    assert report["active_work_items"]["total_count"] == 3
    assert report["active_work_items"]["by_type"] == {"project": 1, "task": 2}
    assert report["active_work_items"]["ready_count"] == 2
    assert report["sync"]["mode"] == "standalone"

    # statusd ready: what can be picked up now
    assert ready.returncode == 0, ready.stderr
    assert "Write docs" in ready.stdout and first["id"][:8] in ready.stdout
    assert "Project A" in ready.stdout
    assert "Ship docs" not in ready.stdout  # waits for "Write docs"
    assert [i["title"] for i in json.loads(ready_json.stdout)["items"]] == ["Write docs"]

    # statusd show ID (a short id), verbatim user text
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith(f"{SECOND_TITLE}  [task, active, high]\n")
    assert second["id"] in show.stdout
    assert "in: Project A" in show.stdout
    assert f"depends_on: Write docs ({first['id'][:8]}, active)" in show.stdout
    assert f"- Write docs ({first['id'][:8]}, active)" in show_parent.stdout
    assert f"- {SECOND_TITLE} ({second['id'][:8]}, active)" in show_parent.stdout

    # an unknown id fails cleanly
    assert unknown.returncode == 1
    assert "not_found" in unknown.stderr and "ffffff00" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert unknown.stdout == ""


async def test_call_runs_any_tool(daemon, project):
    vendor_run, created_run, not_json = await asyncio.gather(
        statusd(daemon, "call", "query_vendor_status", '{"name": "VENDOR_A"}'),
        statusd(daemon, "call", "create_work_item", '{"item_type": "research", "title": "from the CLI"}'),
        statusd(daemon, "call", "sync_status", "{nope"),
    )
    assert vendor_run.returncode == 0, vendor_run.stderr
    vendor = json.loads(vendor_run.stdout)
    assert (vendor["name"], vendor["operational"], vendor["success"]) == ("vendor_a", True, True)

    assert created_run.returncode == 0, created_run.stderr
    created = json.loads(created_run.stdout)
    assert created["created_by"] == "statusd-cli" and created["sync"] == "local_only"

    assert not_json.returncode == 2 and "not JSON" in not_json.stderr

    mismatch = await statusd(daemon, "call", "update_work_item", json.dumps({"id": created["id"], "version": 7}))
    assert mismatch.returncode == 1
    assert "version_mismatch" in mismatch.stderr and "Traceback" not in mismatch.stderr


async def test_commands_without_a_daemon_say_so(tmp_path):
    config = tmp_path / "statusd.toml"
    socket_path = tmp_path / "gone.sock"
    config.write_text(f'project = "gone"\n[socket]\npath = "{socket_path}"\n')
    done = await asyncio.to_thread(
        subprocess.run, statusd_cmd("status", "--config", str(config)), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert str(socket_path) in done.stderr and "statusd run" in done.stderr
    assert "Traceback" not in done.stderr
