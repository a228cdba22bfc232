from __future__ import annotations

from collections.abc import Iterator

import pytest

# ==== PostgreSQL fixtures (helpers in tests/pg_support.py) ================================
# A missing server is an error, never a skip: pg_dsn raises with instructions.
import pg_support


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the shared test server ($STATUSD_TEST_PG_DSN, or a throwaway cluster)."""
    return pg_support.ensure_server(pg_support.test_dsn())


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[tuple[str, str]]:
    """(dsn, schema) with a fresh schema on the shared server, dropped afterwards."""
    name = pg_support.fresh_schema(pg_dsn)
    try:
        yield pg_dsn, name
    finally:
        pg_support.drop_schema(pg_dsn, name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg_support.ThrowawayCluster]:
    """A private cluster for destructive tests; call ensure_running() if a test may have stopped it."""
    with pg_support.ThrowawayCluster() as cluster:
        yield cluster


# ==== end of PostgreSQL fixtures ============================================================


# ==== statusd fixtures ======================================================================
from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402

from daemon_support import DaemonProcess, running_daemon  # noqa: E402
from inprocess_support import InProcessDaemon, inprocess_daemon  # noqa: E402
from statusd.daemon.service import Service  # noqa: E402
from statusd.store import Store  # noqa: E402


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An open store on a real SQLite file."""
    async with Store(tmp_path / "store.sqlite3", machine="test-machine") as s:
        yield s


@pytest.fixture
async def service(store: Store) -> Service:
    """The tool dispatcher over a real store, without a transport (fast tool tests)."""
    return Service(store)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[InProcessDaemon]:
    """The real daemon (standalone) inside the test's event loop, with its own store and socket.

    Tool behaviour is tested here; tests about the process itself (signals, exit codes, systemd,
    kill -9, a second process on the same store) take ``daemon_process``.
    """
    async with inprocess_daemon(tmp_path / "project") as d:
        yield d


@pytest.fixture
def daemon_process(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A running ``statusd run`` subprocess (standalone) with its own store and socket."""
    with running_daemon(tmp_path / "project") as proc:
        yield proc


# ==== Soak runs ==============================================================================
SOAK_TIMEOUT_S = 1800.0


def pytest_configure(config: pytest.Config) -> None:
    """Under ``STATUSD_SOAK=1`` a test may run for minutes (2,000 fuzzed saves took 5 min 15 s): the
    suite's 120 s per-test timeout becomes 30 minutes unless one was given on the command line."""
    from soak import SOAK

    given = any(str(arg).startswith("--timeout") for arg in config.invocation_params.args)
    if SOAK and not given and (config.option.timeout or 0) < SOAK_TIMEOUT_S:
        config.option.timeout = SOAK_TIMEOUT_S
