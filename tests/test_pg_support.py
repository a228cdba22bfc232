"""The PostgreSQL test plumbing: shared-server fixtures and the throwaway cluster."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pg_support import ThrowawayCluster, drop_schema, fresh_schema, redact


async def _connect(dsn: str, schema: str | None = None) -> asyncpg.Connection:
    settings = {"search_path": schema} if schema else None
    return await asyncpg.connect(dsn, timeout=5, server_settings=settings)


async def test_shared_server_answers(pg_dsn: str) -> None:
    conn = await _connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_table_lands_in_the_test_schema(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    conn = await _connect(dsn, schema)
    try:
        await conn.execute("CREATE TABLE item (id int PRIMARY KEY)")
        found = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'item'",
            schema,
        )
        assert found == 1
    finally:
        await conn.close()


async def test_two_schemas_do_not_collide(pg_schema: tuple[str, str]) -> None:
    dsn, first = pg_schema
    second = fresh_schema(dsn)
    try:
        assert second != first
        for schema, value in ((first, 1), (second, 2)):
            conn = await _connect(dsn, schema)
            try:
                await conn.execute("CREATE TABLE item (id int PRIMARY KEY)")
                await conn.execute("INSERT INTO item VALUES ($1)", value)
            finally:
                await conn.close()
        for schema, value in ((first, 1), (second, 2)):
            conn = await _connect(dsn, schema)
            try:
                assert await conn.fetch("SELECT id FROM item") == [(value,)]
            finally:
                await conn.close()
    finally:
        drop_schema(dsn, second)


async def test_drop_schema_removes_it(pg_dsn: str) -> None:
    name = fresh_schema(pg_dsn)
    drop_schema(pg_dsn, name)
    drop_schema(pg_dsn, name)  # idempotent
    conn = await _connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name) == 0
    finally:
        await conn.close()


def test_redact_hides_password() -> None:
    assert redact("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://localhost/test") == "postgresql://localhost/test"


def _fetch(dsn: str, sql: str) -> object:
    """Run ``sql`` (several statements allowed) and return the last one's first value."""

    async def go() -> object:
        conn = await _connect(dsn)
        try:
            *setup, last = [stmt for stmt in sql.split(";") if stmt.strip()]
            for stmt in setup:
                await conn.execute(stmt)
            return await conn.fetchval(last)
        finally:
            await conn.close()

    return asyncio.run(go())


def _refused(dsn: str) -> bool:
    try:
        _fetch(dsn, "SELECT 1")
    except OSError:
        return True
    return False


@pytest.mark.postgres
def test_throwaway_cluster_stop_start_restart() -> None:
    with ThrowawayCluster() as cluster:
        assert cluster.running
        assert _fetch(cluster.dsn, "SELECT current_database()") == "test"
        assert _fetch(cluster.socket_dsn, "SELECT 2") == 2
        _fetch(cluster.dsn, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")

        cluster.stop()
        assert not cluster.running
        assert _refused(cluster.dsn)

        cluster.start()
        assert _fetch(cluster.dsn, "SELECT id FROM kept") == 7

        # A crash-like stop keeps acknowledged commits.
        _fetch(cluster.dsn, "INSERT INTO kept VALUES (8)")
        cluster.stop("immediate")
        assert _refused(cluster.dsn)
        cluster.start()
        assert _fetch(cluster.dsn, "SELECT count(*) FROM kept") == 2

        port = cluster.port
        cluster.restart()
        assert cluster.port == port
        assert _fetch(cluster.dsn, "SELECT 1") == 1
    assert not cluster.running
    assert _refused(cluster.dsn)


@pytest.mark.postgres
async def test_cluster_fixture_async_stop_and_start(pg_cluster: ThrowawayCluster) -> None:
    pg_cluster.ensure_running()
    conn = await _connect(pg_cluster.dsn)
    try:
        await pg_cluster.astop("immediate")
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("SELECT 1")
    finally:
        await conn.close(timeout=1)
    with pytest.raises(OSError):
        await _connect(pg_cluster.dsn)
    await pg_cluster.astart()
    conn = await _connect(pg_cluster.dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
