"""Daemon lifecycle (SPEC §3, §10): one daemon per store, clean SIGTERM, start-up with or without config."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp_support import seed_archivable_items, statusd_cmd, until

from daemon_support import DaemonProcess, short_socket_dir
from statusd.client import StatusdClient
from statusd.paths import default_socket_path
from statusd.store import Store


@pytest.mark.parametrize("second", ["same config", "same store, other socket"])
async def test_a_second_daemon_on_the_same_store_refuses_to_start(daemon_process, tmp_path, second):
    async with daemon_process.client("claude-code") as c:
        item = await c.call("create_work_item", item_type="task", title="served by the first daemon")

    other_dir = short_socket_dir()
    try:
        if second == "same config":
            config = daemon_process.config_path
        else:
            config = tmp_path / "second" / "statusd.toml"
            config.parent.mkdir()
            config.write_text(
                f'project = "test"\n[store]\npath = "{daemon_process.store_path}"\n'
                f'[socket]\npath = "{other_dir / "other.sock"}"\n'
            )
        done = await asyncio.to_thread(
            subprocess.run, statusd_cmd("run", "--config", str(config)), capture_output=True, text=True, timeout=30
        )
    finally:
        shutil.rmtree(other_dir, ignore_errors=True)

    assert done.returncode != 0
    # One line (journald keeps lines apart) naming the store and the daemon that holds it.
    [message] = done.stderr.splitlines()
    assert "another statusd daemon" in message and "already uses the store" in message, done.stderr
    assert str(daemon_process.store_path) in message
    assert f"pid {daemon_process.proc.pid}" in message
    # The first daemon is untouched: same socket, same data.
    assert daemon_process.alive() and daemon_process.socket_path.is_socket()
    async with daemon_process.client("claude-code") as c:
        assert (await c.call("query_work_item", id=item["id"]))["title"] == "served by the first daemon"


def writer_busy(store_path: Path) -> bool:
    """True while another connection holds the store's write lock (a write transaction is running)."""
    probe = sqlite3.connect(store_path, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


async def test_sigterm_answers_the_call_in_flight_then_exits_cleanly(tmp_path):
    proc = DaemonProcess(tmp_path / "project")
    try:
        seed_archivable_items(proc.store_path, 5000)  # archiving them is a write that takes a while
        proc.start()
        async with proc.client("claude-code") as c, proc.client("idle-client"):
            call = asyncio.create_task(c.call("trigger_archiving"))
            await until(lambda: writer_busy(proc.store_path) or call.done(), what="the archiving write to start")
            assert not call.done(), "the call finished before SIGTERM: make the seeded store bigger"
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            result = await call  # answered, not dropped

            assert result["success"] is True and result["archived"] == 5000
        code = await asyncio.to_thread(proc.proc.wait, 5)
        assert time.monotonic() - signalled < 5.0
        assert code == 0, proc.log()
        assert not proc.socket_path.exists()
        assert "statusd stopped" in proc.log()
        # The write was committed, and the store is free for the next daemon.
        reopened = Store(proc.store_path)
        reopened.open()
        try:
            assert (
                reopened.reader.execute("SELECT COUNT(*) FROM work_items WHERE archived_at IS NOT NULL").fetchone()[0]
                == 5000
            )
        finally:
            reopened.close()
    finally:
        proc.cleanup()


async def test_sigterm_with_idle_connections_exits_within_five_seconds(daemon_process):
    async with daemon_process.client("a") as a, daemon_process.client("b"), daemon_process.client("c"):
        await a.call("create_work_item", item_type="task", title="x")
        daemon_process.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(daemon_process.proc.wait, 5)
        assert code == 0, daemon_process.log()
        assert not daemon_process.socket_path.exists()
        # A call after shutdown fails as a closed connection; it never hangs.
        with anyio.fail_after(5), pytest.raises(MCPError, match="Connection closed"):
            await a.call("sync_status")


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATUSD_", "XDG_"))}
    env.update(overrides)
    return env


async def test_starts_with_no_configuration_at_all(tmp_path):
    project = tmp_path / "fresh-project"
    project.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    runtime = short_socket_dir()
    socket_path = default_socket_path("fresh-project", project, {"XDG_RUNTIME_DIR": str(runtime)})
    assert socket_path.parent == runtime / "statusd"
    log_path = tmp_path / "daemon.log"
    proc = spawn(statusd_cmd("run"), project, clean_env(HOME=str(home), XDG_RUNTIME_DIR=str(runtime)), log_path)
    try:
        await until(lambda: socket_path.is_socket() or proc.poll() is not None, within=15, what="the default socket")
        assert proc.poll() is None, log_path.read_text()
        assert stat_mode(socket_path.parent) == 0o700
        async with StatusdClient.connect(socket_path, client_name="claude-code") as c:
            item = await c.call("create_work_item", item_type="task", title="no config needed")
            status = await c.call("generate_full_status")
        assert item["created_by"] == "claude-code"
        assert status["active_work_items"]["total_count"] == 1
        assert status["sync"]["mode"] == "standalone"
        assert Path(status["sync"]["store_path"]) == project / ".statusd" / "store.sqlite3"
        assert (project / ".statusd" / "store.sqlite3").is_file()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 5) == 0, log_path.read_text()
        assert not socket_path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(runtime, ignore_errors=True)


def spawn(command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_bad_configuration_fails_fast_naming_the_key(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    runtime = short_socket_dir()
    try:
        config = project / "statusd.toml"
        config.write_text('project = "bad"\n\n[sync]\nwrite_mode = "sometimes"\n')
        done = subprocess.run(
            statusd_cmd("run", "--config", str(config)),
            cwd=project,
            env=clean_env(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(runtime)),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode != 0
        assert "sync.write_mode" in done.stderr
        assert not (runtime / "statusd").exists()
        assert not (project / ".statusd").exists()  # failed before touching the store

    finally:
        shutil.rmtree(runtime, ignore_errors=True)
