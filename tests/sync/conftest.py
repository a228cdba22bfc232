from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sync_support import Fleet, hub_connect

from statusd.sync import pg_schema as hub_schema


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Start replicated daemons with ``fleet.start(pg_config(...))``; all are stopped afterwards."""
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture
async def hub(pg_schema: tuple[str, str]) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """A connection to a migrated hub schema of its own."""
    dsn, schema = pg_schema
    conn = await hub_connect(dsn)
    try:
        await hub_schema.migrate(conn, schema)
        yield conn, schema
    finally:
        await conn.close()
