"""``statusd mcp``: a byte pump that speaks only MCP on stdout and fails loudly without a daemon."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

from mcp_support import seed_archivable_items, statusd_cmd
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from inprocess_support import InProcessDaemon

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": LATEST_HANDSHAKE_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "pipe", "version": "1"},
    },
}


def lines(*messages: dict) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def test_without_a_daemon_the_bridge_exits_nonzero_naming_the_socket(tmp_path: Path):
    socket_path = tmp_path / "nobody-home.sock"
    done = subprocess.run(
        statusd_cmd("mcp", "--socket", str(socket_path), "--client", "bridge-x"),
        input=lines(INITIALIZE),
        capture_output=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert done.stdout == b""  # stdout belongs to MCP traffic; the explanation goes to stderr
    err = done.stderr.decode()
    assert str(socket_path) in err
    assert "statusd run" in err  # says how to fix it


def test_without_a_daemon_the_socket_comes_from_the_config(tmp_path: Path):
    socket_path = tmp_path / "from-config.sock"
    config = tmp_path / "statusd.toml"
    config.write_text(f'project = "p"\n\n[socket]\npath = "{socket_path}"\n')
    done = subprocess.run(statusd_cmd("mcp", "--config", str(config)), input=b"", capture_output=True, timeout=30)
    assert done.returncode != 0
    assert done.stdout == b""
    assert str(socket_path) in done.stderr.decode()


async def test_stdout_carries_only_json_rpc_and_eof_ends_the_bridge(daemon):
    done = await asyncio.to_thread(
        subprocess.run,
        statusd_cmd("mcp", "--socket", str(daemon.socket_path), "--client", "pipe-client"),
        input=lines(
            INITIALIZE,
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "create_work_item", "arguments": {"item_type": "task", "title": "piped"}},
            },
        ),
        capture_output=True,
        timeout=30,
    )
    # stdin EOF: the bridge half-closes, the daemon answers what is in flight, then both end.
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    out = done.stdout.decode().splitlines()
    messages = [json.loads(line) for line in out]  # every stdout line is a JSON-RPC message
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    answers = {m["id"]: m for m in messages if "id" in m}
    assert set(answers) == {1, 2, 3}
    created = answers[3]["result"]["structuredContent"]
    assert created["title"] == "piped" and created["created_by"] == "pipe-client"


async def test_a_cancelled_call_does_not_hold_the_connection_open(tmp_path: Path):
    """A client that cancels its last call and closes stdin gets a prompt EOF (no answer is owed)."""
    proc = InProcessDaemon(tmp_path / "project")
    try:
        seed_archivable_items(proc.store_path, 5000)  # so the call is still running when the cancel arrives
        await proc.start()
        started = time.monotonic()
        done = await asyncio.to_thread(
            subprocess.run,
            statusd_cmd("mcp", "--socket", str(proc.socket_path)),
            input=lines(
                INITIALIZE,
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "trigger_archiving"}},
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}},
            ),
            capture_output=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 10, "the daemon kept a half-closed connection for a cancelled call"
        ids = [json.loads(line).get("id") for line in done.stdout.decode().splitlines()]
        assert 1 in ids and ids.count(2) <= 1  # the cancelled call is answered at most once (normally not at all)
        await proc.stop()
    finally:
        if proc.alive():
            await proc.stop()
        proc.cleanup()
