"""The daemon's one exit stack (issue 9 item 5): every started resource stops, on every path, promptly."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon_support import short_socket_dir
from statusd.config import load_settings
from statusd.daemon import app as daemon_app
from statusd.daemon.app import Daemon, State
from statusd.store import Store


def config(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    sock = short_socket_dir() / "d.sock"
    path = tmp_path / "statusd.toml"
    path.write_text(f'project = "life"\n[socket]\npath = "{sock}"\n{extra}')
    return path, sock


def unlocked(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


async def test_a_failure_after_the_socket_is_bound_releases_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, sock = config(tmp_path)
    settings = load_settings(path)

    async def refuse(self: Any) -> Any:
        raise RuntimeError("scheduler refused to start")

    monkeypatch.setattr(daemon_app.Upkeep, "__aenter__", refuse)
    daemon = Daemon(settings)
    with pytest.raises(RuntimeError, match="scheduler refused"):
        await daemon.run()
    assert daemon.state is State.STOPPED
    assert not sock.exists(), "the socket file was removed"
    assert unlocked(Path(str(sock) + ".lock")), "the socket lock was released"
    assert daemon.replicator is None and daemon.server is not None
    async with Store(settings.store.path):  # the store's lock is free: it was closed
        pass
    assert not any(t.get_name() in ("server", "watchdog") for t in asyncio.all_tasks()), "no task outlives run()"


def start(path: Path, sock: Path) -> subprocess.Popen[bytes]:
    log = path.with_name("daemon.log")
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "statusd.cli", "run", "--config", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the daemon never bound its socket"
        time.sleep(0.01)
    return proc


def stop_within(proc: subprocess.Popen[bytes], seconds: float) -> tuple[int, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the daemon ignored SIGTERM for {seconds} s")
    return code, time.monotonic() - t0


def test_sigterm_while_the_sdk_is_still_loading_exits_0_within_5_s(tmp_path: Path) -> None:
    path, sock = config(tmp_path)
    proc = start(path, sock)  # returns as soon as the socket exists: READY, SDK not necessarily loaded
    code, took = stop_within(proc, 5)
    assert code == 0, path.with_name("daemon.log").read_text()
    assert took < 5
    assert not sock.exists()
    second = start(path, sock)  # nothing left behind: the next daemon takes the store and the socket
    code, _ = stop_within(second, 5)
    assert code == 0


def test_sigterm_with_postgres_unreachable_and_a_client_connected_exits_within_5_s(tmp_path: Path) -> None:
    path, sock = config(tmp_path, '[postgres]\ndsn = "postgresql://u@127.0.0.1:1/db"\n')
    proc = start(path, sock)
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(sock))  # an idle client that never says anything
    try:
        from statusd.quick_client import QuickClient

        with QuickClient(sock) as c:  # serving for real (SDK loaded, replicator retrying)
            assert c.call("sync_status", {})["mode"] == "replicated"
        code, took = stop_within(proc, 5)
    finally:
        client.close()
    assert code == 0 and took < 5
