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
