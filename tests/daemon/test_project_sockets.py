"""Issue 6 item 6, SPEC §4.3: two projects whose directories share a name (``a/api``, ``b/api``).

Before: both defaulted to ``<runtime>/statusd/api.sock``; the second daemon was refused but deleted
the first one's socket on its way out (alive, unreachable), and CLI calls from ``b/api`` silently
read and wrote ``a/api``'s store.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import statusd_cmd, until
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from daemon_support import short_socket_dir
from statusd.client import StatusdClient
from statusd.paths import default_socket_path

INIT = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}}


class Project:
    """A project directory served by a ``statusd run`` started in it (config file optional)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.log = root / "daemon.log"
        self.store = root / ".statusd" / "store.sqlite3"
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True)

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                statusd_cmd("run"), cwd=self.root, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        return self.proc

    def cli(self, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        """A ``statusd`` command run from the project directory (its default config discovery)."""
        command = statusd_cmd(*args)
        return subprocess.run(
            command, cwd=self.root, env=self.env, input=input, capture_output=True, text=True, timeout=60
        )

    def titles(self) -> list[str]:
        with sqlite3.connect(f"file:{self.store}?mode=ro", uri=True) as conn:
            return [r[0] for r in conn.execute("SELECT title FROM work_items ORDER BY title")]

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = short_socket_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def projects(tmp_path: Path, runtime: Path) -> Iterator[tuple[Project, Project]]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATUSD_", "XDG_"))}
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    pair = (Project(tmp_path / "a" / "api", env), Project(tmp_path / "b" / "api", env))
    try:
        yield pair
    finally:
        for p in pair:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()


def listening(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
        return True
    except OSError:
        return False


async def call(path: Path, tool: str, **args: object) -> dict[str, object]:
    async with StatusdClient.connect(path, client_name="test") as c:
        return await c.call(tool, **args)


async def test_same_named_projects_get_their_own_daemons_and_stores(
    projects: tuple[Project, Project], runtime: Path
) -> None:
    a, b = projects
    sockets = [default_socket_path("api", p.root, a.env) for p in (a, b)]
    assert sockets[0] != sockets[1]
    for p, sock in zip((a, b), sockets, strict=True):
        proc = p.start()
        await until(lambda s=sock, pr=proc: listening(s) or pr.poll() is not None, within=15, what=str(sock))
        assert proc.poll() is None, p.log.read_text()

    created = await asyncio.to_thread(b.cli, "call", "create_work_item", '{"item_type": "task", "title": "from b"}')
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["title"] == "from b"
    await call(sockets[0], "create_work_item", item_type="task", title="from a")
    listed = await asyncio.to_thread(b.cli, "call", "list_work_items", "{}")
    assert [i["title"] for i in json.loads(listed.stdout)["items"]] == ["from b"], listed.stdout
    assert a.titles() == ["from a"] and b.titles() == ["from b"]
    assert [p.stop() for p in (a, b)] == [0, 0]
    assert not any(s.exists() for s in sockets)


async def test_a_refused_daemon_leaves_the_running_one_reachable(
    projects: tuple[Project, Project], runtime: Path
) -> None:
    a, b = projects
    shared = runtime / "shared.sock"
    for p in (a, b):
        (p.root / "statusd.toml").write_text(f'[socket]\npath = "{shared}"\n')
    first = a.start()
    await until(lambda: listening(shared) or first.poll() is not None, within=15, what="a/api's daemon")
    await call(shared, "create_work_item", item_type="task", title="from a")

    second = b.start()
    code = await asyncio.to_thread(second.wait, 30)
    assert code == 75, b.log.read_text()
    output = b.log.read_text()
    assert "Traceback" not in output, output
    [message] = [line for line in output.splitlines() if line.startswith("statusd:")]  # one line
    assert "already listens on the socket" in message and str(shared) in message, message
    assert "'socket.path'" in message and "'project'" in message, message
    assert f"pid {first.pid}" in message and str(a.root) in message, message

    # The first daemon keeps its socket and serves on.
    assert first.poll() is None and shared.is_socket()
    titles = [i["title"] for i in (await call(shared, "list_work_items"))["items"]]  # type: ignore[union-attr]
    assert titles == ["from a"]

    # b/api's commands reach a/api's daemon through the shared socket, which refuses them.
    refused = await asyncio.to_thread(b.cli, "call", "create_work_item", '{"item_type": "task", "title": "from b"}')
    assert refused.returncode == 1 and refused.stdout == "", refused
    assert "serves another project" in refused.stderr and "'socket.path'" in refused.stderr, refused.stderr
    assert str(a.store) in refused.stderr
    assert a.titles() == ["from a"]
    listed = await asyncio.to_thread(a.cli, "call", "list_work_items", "{}")  # a/api's own commands still work
    assert [i["title"] for i in json.loads(listed.stdout)["items"]] == ["from a"], listed.stderr
    # So does the stdio bridge an MCP host spawns for b/api; a/api's bridge is served.
    initialize = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT}) + "\n"
    bridged = await asyncio.to_thread(b.cli, "mcp", input=initialize)
    assert bridged.returncode == 78 and bridged.stdout == "", bridged
    assert "serves another project" in bridged.stderr and "'socket.path'" in bridged.stderr
    served = await asyncio.to_thread(a.cli, "mcp", input=initialize)
    assert served.returncode == 0 and json.loads(served.stdout)["id"] == 1, served
    assert a.stop() == 0
    assert not shared.exists()
