"""Issue 6 item 7: ``statusd mcp < requests.jsonl`` (stdin a regular file) works as through a pipe.

Before: the bridge registered stdin with epoll, which refuses regular files: a traceback, no answers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import module_daemon, statusd_cmd
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from daemon_support import DaemonProcess

CALLS = 300


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    yield from module_daemon(tmp_path_factory)


def requests_file(path: Path) -> Path:
    client = {"name": "f", "version": "1"}
    init = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": client}
    messages: list[dict[str, object]] = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    # Answers (~2 MB) far larger than the socket buffers: sending all requests before reading any
    # answer would deadlock with a daemon whose writes block.
    args = {"item_type": "task", "title": "from a file", "description": "d" * 3000}
    messages += [
        {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "create_work_item", "arguments": args}}
        for n in range(1, CALLS + 1)
    ]
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def test_requests_from_a_regular_file_are_all_answered(daemon: DaemonProcess, tmp_path: Path) -> None:
    with open(requests_file(tmp_path / "requests.jsonl"), "rb") as stdin:
        done = subprocess.run(
            statusd_cmd("mcp", "--socket", str(daemon.socket_path), "--client", "file-client"),
            stdin=stdin,
            capture_output=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    answers = {m["id"]: m for m in map(json.loads, done.stdout.decode().splitlines()) if "id" in m}
    assert set(answers) == set(range(CALLS + 1))
    created = [answers[n]["result"]["structuredContent"] for n in range(1, CALLS + 1)]
    assert {c["created_by"] for c in created} == {"file-client"}
    assert len({c["id"] for c in created}) == CALLS


def test_stdin_from_dev_null_ends_cleanly(daemon: DaemonProcess) -> None:
    done = subprocess.run(
        statusd_cmd("mcp", "--socket", str(daemon.socket_path)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
