"""Start real daemons for tests: a ``statusd run`` subprocess with its own store, config and socket."""

from __future__ import annotations

import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio

from statusd.client import StatusdClient


def short_socket_dir() -> Path:
    """A short directory for sockets: AF_UNIX paths must stay under ~107 bytes."""
    return Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))


async def until(condition: Callable[[], Any], within: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` (plain or async) until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await anyio.sleep(0.01)


class DaemonHost:
    """A test project for one daemon, in a process or in this one: paths, config, log, clients."""

    def __init__(self, root: Path, *, extra_config: str = "", env: dict[str, str] | None = None) -> None:
        self.root = root
        self.sock_dir = short_socket_dir()
        self.socket_path = self.sock_dir / "statusd.sock"
        self.config_path = root / "statusd.toml"
        self.log_path = root / "daemon.log"
        self.store_path = root / ".statusd" / "store.sqlite3"
        root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f'project = "test"\n\n[socket]\npath = "{self.socket_path}"\n\n[log]\nlevel = "INFO"\n{extra_config}'
        )
        self.env = {**os.environ, **(env or {})}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cleanup(self) -> None:
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    @asynccontextmanager
    async def client(self, name: str = "test-client", **kw: Any) -> AsyncIterator[StatusdClient]:
        async with StatusdClient.connect(self.socket_path, client_name=name, **kw) as c:
            yield c


class DaemonProcess(DaemonHost):
    """A ``statusd run`` child process; ``stop()`` sends SIGTERM and returns the exit code."""

    def __init__(self, root: Path, *, extra_config: str = "", env: dict[str, str] | None = None) -> None:
        super().__init__(root, extra_config=extra_config, env=env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> DaemonProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "statusd.cli", "run", "--config", str(self.config_path)],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket_path))
                return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"daemon did not listen within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        self.kill()
        super().cleanup()


@contextmanager
def running_daemon(root: Path) -> Iterator[DaemonProcess]:
    """A started daemon that must exit 0 on SIGTERM when the block ends."""
    with running_daemon_with(root, "") as proc:
        yield proc


@contextmanager
def running_daemon_with(root: Path, extra_config: str) -> Iterator[DaemonProcess]:
    """``running_daemon`` with extra configuration text (e.g. a ``[postgres]`` section)."""
    proc = DaemonProcess(root, extra_config=extra_config).start()
    try:
        yield proc
        code = proc.stop()
        assert code == 0, f"daemon exited {code} on SIGTERM:\n{proc.log()}"
    finally:
        proc.cleanup()
