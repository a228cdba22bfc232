"""Helpers for end-to-end daemon tests: the CLI as a subprocess and the official SDK's stdio client."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from daemon_support import DaemonProcess, running_daemon, until  # noqa: F401 (re-exported for the daemon tests)
from statusd.models import CreateWorkItemArgs, iso
from statusd.store import Store, WriteContext, workitems


def module_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """Body of a module-scoped ``daemon`` fixture, for modules whose tests do not depend on each other's data.

    A daemon start costs most of a second (interpreter + imports); sharing one keeps the suite fast.
    """
    with running_daemon(tmp_path_factory.mktemp("daemon") / "project") as proc:
        yield proc


def statusd_cmd(*args: str) -> list[str]:
    """The ``statusd`` console script, run with this interpreter (the venv's)."""
    return [sys.executable, "-m", "statusd.cli", *args]


@asynccontextmanager
async def bridge_session(
    socket_path: Path,
    *,
    client: str | None = None,
    declared_name: str = "declared-client",
    errlog: IO[str] | None = None,
) -> AsyncIterator[ClientSession]:
    """Spawn ``statusd mcp --socket PATH [--client NAME]`` and open an SDK session over its stdio.

    The bridge's stderr goes to ``errlog`` (a real file: the child writes to its descriptor).
    """
    args = ["-m", "statusd.cli", "mcp", "--socket", str(socket_path)]
    if client is not None:
        args += ["--client", client]
    params = StdioServerParameters(command=sys.executable, args=args)
    info = types.Implementation(name=declared_name, version="1.0")
    with contextlib.ExitStack() as files:
        log = errlog if errlog is not None else files.enter_context(tempfile.TemporaryFile("w+"))
        async with (
            stdio_client(params, errlog=log) as (read, write),
            ClientSession(read, write, client_info=info) as session,
        ):
            await session.initialize()
            yield session


def seed_archivable_items(store_path: Path, count: int) -> None:
    """``count`` items last active 400 days ago, written in one transaction before the daemon starts."""
    then = iso(datetime.now(UTC) - timedelta(days=400))
    args = [CreateWorkItemArgs(item_type="task", title=f"old {i}") for i in range(count)]

    def create_all(conn: sqlite3.Connection, ctx: WriteContext) -> None:
        for a in args:
            workitems.create(conn, ctx, a)

    store = Store(store_path, clock=lambda: then)
    store.open()
    try:
        store.write_sync(create_all, WriteContext(actor="seed"))
    finally:
        store.close()
