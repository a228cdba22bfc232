"""Interoperability: the official TypeScript MCP SDK client drives ``statusd mcp`` (SPEC §4.4).

``session.mjs`` is a realistic host session (two hosts on an old and a new protocol version):
annotated tools, reads and writes, a subscription notified by the other host's write, a prompt,
completions, a cancelled long call with progress, and every protocol error. ``npm ci`` in this
directory installs the pinned SDK (``scripts/test`` does it when the lockfile changed).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beads_support import beads_source
from daemon_support import running_daemon
from statusd.models import CreateWorkItemArgs, iso
from statusd.store import Store, WriteContext, workitems

HERE = Path(__file__).resolve().parent
ARCHIVABLE = 3_000  # enough batches for trigger_archiving to be cancelled half-way
IMPORTED = 600  # beads records import_tasks reads, with progress, in the session


def seed_archivable(store_path: Path, count: int) -> None:
    then = iso(datetime.now(UTC) - timedelta(days=400))

    def create_all(conn: sqlite3.Connection, ctx: WriteContext) -> None:
        for i in range(count):
            workitems.create(conn, ctx, CreateWorkItemArgs(item_type="task", title=f"old {i}"))

    store = Store(store_path, clock=lambda: then)
    store.open()
    try:
        store.write_sync(create_all, WriteContext(actor="seed"))
    finally:
        store.close()


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (>= 20) is not installed: the interop suite drives statusd with the TypeScript SDK client")
    if not (HERE / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(f"the TypeScript SDK is not installed: run 'npm ci' in {HERE} (scripts/test does it)")
    return found


@pytest.mark.timeout(180)
def test_typescript_sdk_host_session(tmp_path: Path) -> None:
    executable = node()
    root = tmp_path / "project"
    seed_archivable(root / ".statusd" / "store.sqlite3", ARCHIVABLE)
    source = beads_source(tmp_path / "beads", IMPORTED, prefix="ts", title="interop", tombstone_every=100)
    with running_daemon(root) as daemon:
        args = [sys.executable, str(daemon.socket_path), str(ARCHIVABLE), str(source), str(IMPORTED)]
        proc = subprocess.run(
            [executable, str(HERE / "session.mjs"), *args],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\ndaemon log:\n{daemon.log()}"
    checks = [line for line in proc.stdout.splitlines() if line.startswith("ok - ")]
    assert len(checks) == 10, proc.stdout
