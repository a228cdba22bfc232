"""Socket security (SPEC §4.3, R7): a private directory, a private socket, other users refused."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_support import until

# Runs as another user: standard library only, and it must not hang if the daemon says nothing.
PROBE = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("connect-failed", exc.errno); sys.exit(0)
hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
         "capabilities": {}, "clientInfo": {"name": "intruder", "version": "1"}}}
data = b""
try:
    s.sendall(json.dumps(hello).encode() + b"\n")
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except (BrokenPipeError, ConnectionResetError):
    pass
except socket.timeout:
    print("timeout", len(data)); sys.exit(0)
print("answered" if data else "closed", len(data))
"""


def interpreter_for(user: str) -> str:
    """A Python interpreter that ``user`` may execute (ours may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run([candidate, "-c", "pass"], user=user, capture_output=True, timeout=30)
        except PermissionError:
            continue
        if probe.returncode == 0:
            return candidate
    pytest.skip(f"no Python interpreter executable by {user!r}")


def test_socket_and_directory_are_private(daemon_process):
    sock = daemon_process.socket_path.stat()
    assert stat.S_ISSOCK(sock.st_mode)
    assert stat.S_IMODE(sock.st_mode) == 0o600
    assert stat.S_IMODE(daemon_process.socket_path.parent.stat().st_mode) == 0o700
    assert sock.st_uid == os.getuid()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
async def test_another_user_is_refused_and_the_daemon_carries_on(daemon_process):
    other = pwd.getpwnam("nobody")
    python = interpreter_for("nobody")
    # Open the file-system path wide for this test only, so the peer-uid check is what refuses.
    os.chmod(daemon_process.socket_path.parent, 0o711)
    os.chmod(daemon_process.socket_path, 0o666)

    command = [python, "-c", PROBE, str(daemon_process.socket_path)]
    probe = await asyncio.to_thread(subprocess.run, command, user="nobody", capture_output=True, text=True, timeout=30)

    assert probe.returncode == 0, probe.stderr
    verdict = probe.stdout.split()
    assert verdict == ["closed", "0"], f"another user got {probe.stdout!r}"
    refusal = f"refused a connection from uid {other.pw_uid}"
    await until(lambda: refusal in daemon_process.log(), what="the refusal in the log")
    assert daemon_process.alive()
    async with daemon_process.client("owner") as c:
        assert (await c.call("sync_status"))["mode"] == "standalone"


def test_a_stale_wide_socket_directory_is_tightened_at_start(tmp_path: Path):
    from daemon_support import DaemonProcess

    proc = DaemonProcess(tmp_path / "project")
    try:
        os.chmod(proc.sock_dir, 0o777)
        proc.start()
        assert stat.S_IMODE(proc.sock_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(proc.socket_path.stat().st_mode) == 0o600
        assert proc.stop() == 0
    finally:
        proc.cleanup()
