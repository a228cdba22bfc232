"""The benchmark's environment: daemons over seeded stores, and their Postgres copies.

Both are created on first use and torn down by ``Env.close()``: the daemons get SIGTERM (and must
exit 0), the Postgres schemas are dropped, the temp directory is removed. Daemons are the test
suite's ``DaemonProcess`` (a real ``statusd run`` subprocess); Postgres comes from the suite's
``pg_support`` (``$STATUSD_TEST_PG_DSN``, default ``postgresql://localhost/test``).

The replication figures also get replicated daemons (``Env.replicated``), hub schemas
(``Env.hub_schema``) and TCP proxies in front of Postgres (``Env.proxy``: the replication tests'
fault-injecting ``tests/sync/tcp_proxy.py``), all torn down the same way: daemons first, then
proxies, then schemas.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from benchmarks import datasets, pg
from benchmarks.core import Settings
from statusd.client import StatusdClient
from statusd.store import Store, WriteContext

TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import pg_support  # noqa: E402
from daemon_support import DaemonProcess  # noqa: E402

if TYPE_CHECKING:
    from tcp_proxy import TcpProxy


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_config(dsn: str, schema: str, **sync: Any) -> str:
    """The ``[postgres]`` (and optional ``[sync]``) config sections of a replicated daemon."""
    text = f'\n[postgres]\ndsn = "{dsn}"\nschema = "{schema}"\n'
    if sync:
        text += "\n[sync]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sync.items())
    return text


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Dataset:
    """A running daemon over a seeded store, plus (on demand) a Postgres copy of the same rows."""

    name: str
    daemon: DaemonProcess
    info: Any
    env: Env
    schema: str | None = None
    pg_counts: dict[str, int] = field(default_factory=dict)
    _pool: asyncpg.Pool | None = None

    @property
    def socket_path(self) -> Path:
        return self.daemon.socket_path

    def cpu_seconds(self) -> float:
        assert self.daemon.proc is not None
        return process_cpu_seconds(self.daemon.proc.pid)

    def client(self, name: str = "bench") -> Any:
        return StatusdClient.connect(self.daemon.socket_path, client_name=name)

    async def pool(self) -> asyncpg.Pool:
        """A 20-connection pool on this dataset's Postgres copy (copied on first call)."""
        if self._pool is None:
            dsn = self.env.dsn()
            self.schema = pg_support.fresh_schema(dsn, prefix=f"statusd_bench_{self.name}")
            self.env.schemas.append(self.schema)
            t0 = time.perf_counter()
            conn = await asyncpg.connect(dsn, server_settings={"search_path": self.schema})
            try:
                self.pg_counts = await pg.copy_store(conn, self.daemon.store_path)
                self.env.pg_version = str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()
            log(f"copied {self.name} to Postgres schema {self.schema} in {time.perf_counter() - t0:.1f}s")
            self._pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=20, server_settings={"search_path": self.schema}
            )
        return self._pool


class Env:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(tempfile.mkdtemp(prefix="statusd-bench-"))
        self.datasets: dict[str, Dataset] = {}
        self.schemas: list[str] = []
        self._dsn: str | None = None
        self.seconds_seeding = 0.0
        self.problems: list[str] = []
        self.pg_version = ""
        self.replicated_daemons: dict[str, DaemonProcess] = {}
        self.proxies: list[TcpProxy] = []

    def dsn(self) -> str:
        if self._dsn is None:
            self._dsn = pg_support.ensure_server(pg_support.test_dsn())
        return self._dsn

    def _start(self, name: str, seed: Callable[..., Any], *args: Any) -> Dataset:
        if name in self.datasets:
            return self.datasets[name]
        t0 = time.perf_counter()
        daemon = DaemonProcess(self.root / name)
        store = Store(daemon.store_path, machine="bench")
        store.open()
        try:
            info = store.write_sync(seed, WriteContext(actor="bench-seed"), *args)
        finally:
            store.close()
        seeded = time.perf_counter() - t0
        daemon.start(timeout=60)
        self.seconds_seeding += time.perf_counter() - t0
        log(f"dataset {name}: seeded in {seeded:.1f}s, daemon up after {time.perf_counter() - t0:.1f}s")
        ds = Dataset(name, daemon, info, self)
        self.datasets[name] = ds
        return ds

    def hub_schema(self, tag: str) -> str:
        """A fresh, empty Postgres schema (a replication hub or a baseline's tables), dropped at the end."""
        name = pg_support.fresh_schema(self.dsn(), prefix=f"statusd_bench_{tag}")
        self.schemas.append(name)
        return name

    def replicated(self, name: str, schema: str, *, dsn: str | None = None, **sync: Any) -> DaemonProcess:
        """A replicated daemon (not started) on hub ``schema``, via ``dsn`` (default: the server itself)."""
        if name in self.replicated_daemons or name in self.datasets:
            raise ValueError(f"daemon {name!r} exists already")
        daemon = DaemonProcess(self.root / name, extra_config=pg_config(dsn or self.dsn(), schema, **sync))
        self.replicated_daemons[name] = daemon
        return daemon

    def start(self, daemon: DaemonProcess) -> DaemonProcess:
        """Start (or restart) a daemon, counting the time as set-up."""
        t0 = time.perf_counter()
        daemon.start(timeout=60)
        self.seconds_seeding += time.perf_counter() - t0
        return daemon

    def proxy(self) -> TcpProxy:
        """A started TCP proxy in front of the Postgres server (mode ``pass``), closed at the end."""
        sync_tests = str(TESTS_DIR / "sync")
        if sync_tests not in sys.path:
            sys.path.insert(0, sync_tests)
        from tcp_proxy import TcpProxy

        proxy = TcpProxy.to(self.dsn())
        self.proxies.append(proxy)
        return proxy

    def seed(self) -> Dataset:
        """The seed document's data: 45 vendors, 50 items, 10 deployments, 8 enhancements."""
        return self._start("seed", datasets.seed_small)

    def vendors(self) -> Dataset:
        return self._start("vendors", datasets.seed_vendors, self.settings.large_vendors)

    def imports(self) -> Dataset:
        """Seed-sized data that an import figure may add to without disturbing the others."""
        return self._start("imports", datasets.seed_small)

    def large(self) -> Dataset:
        return self._start("large", datasets.seed_large, self.settings.large_items)

    async def close(self) -> list[str]:
        """Stop everything; return problems found on the way (a daemon that did not exit 0)."""
        problems: list[str] = []
        for ds in self.datasets.values():
            if ds._pool is not None:
                with contextlib.suppress(Exception):
                    await ds._pool.close()
            try:
                code = ds.daemon.stop()
                if code != 0:
                    problems.append(f"daemon {ds.name} exited {code} on SIGTERM")
            except Exception as exc:
                problems.append(f"daemon {ds.name} did not stop: {exc!r}")
            finally:
                ds.daemon.cleanup()
        for name, daemon in self.replicated_daemons.items():
            try:
                code = daemon.stop()
                if code != 0:
                    problems.append(f"replicated daemon {name} exited {code} on SIGTERM")
            except Exception as exc:
                problems.append(f"replicated daemon {name} did not stop: {exc!r}")
            finally:
                daemon.cleanup()
        for proxy in self.proxies:
            try:
                proxy.close()
            except Exception as exc:
                problems.append(f"could not close a TCP proxy: {exc!r}")
        for schema in self.schemas:
            try:
                pg_support.drop_schema(self.dsn(), schema)
            except Exception as exc:
                problems.append(f"could not drop Postgres schema {schema}: {exc!r}")
        shutil.rmtree(self.root, ignore_errors=True)
        self.problems += problems
        return problems


@contextlib.asynccontextmanager
async def environment(settings: Settings) -> AsyncIterator[Env]:
    env = Env(settings)
    try:
        yield env
    finally:
        for problem in await env.close():
            log(f"teardown: {problem}")
