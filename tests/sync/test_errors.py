"""``sync/errors.py``: real asyncpg exceptions, provoked against a real server, mapped in one place."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sync_support import hub_connect

from statusd.errors import HubError, HubFaultError, HubRejectedError, HubUnavailableError, StatusdError
from statusd.sync.errors import describe, is_rejection, is_transient, map_hub_error
from statusd.sync.pg_schema import SchemaTooNewError


@pytest.fixture
async def conn(pg_schema: tuple[str, str]) -> AsyncIterator[asyncpg.Connection]:
    c = await hub_connect(pg_schema[0])
    try:
        await c.execute(f"SET search_path TO {pg_schema[1]}")
        yield c
    finally:
        await c.close()


async def raised(action: Callable[[], Awaitable[Any]]) -> BaseException:
    try:
        await action()
    except Exception as exc:
        return exc
    raise AssertionError("expected an error")


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("SELECT '\"a\\u0000b\"'::jsonb", "22P05"),  # a NUL in a JSON string
        ("SELECT 'Infinity'::jsonb", "22P02"),  # a raw 1e999 serialised by Python
        ("SELECT 1 / 0", "22012"),
        ("SELECT repeat('x', 10)::varchar(2)::char(1) || chr(0)", "54000"),
    ],
    ids=["nul-in-json", "infinity", "division", "program-limit"],
)
async def test_data_errors_are_rejections(conn: asyncpg.Connection, sql: str, sqlstate: str) -> None:
    exc = await raised(lambda: conn.fetchval(sql))
    mapped = map_hub_error(exc)
    assert isinstance(mapped, HubRejectedError) and isinstance(mapped, StatusdError)
    assert mapped.sqlstate == sqlstate and not mapped.transient
    assert is_rejection(exc) and not is_transient(exc)


async def test_constraint_and_trigger_errors_are_rejections(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE TABLE t (n integer CHECK (n > 0))")
    await conn.execute(
        "CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
    )
    check = await raised(lambda: conn.execute("INSERT INTO t VALUES (-1)"))
    assert isinstance(check, asyncpg.CheckViolationError)
    assert isinstance(map_hub_error(check), HubRejectedError)
    await conn.execute("CREATE TRIGGER no BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION no()")
    trigger = await raised(lambda: conn.execute("INSERT INTO t VALUES (1)"))
    assert isinstance(trigger, asyncpg.RaiseError)
    assert isinstance(map_hub_error(trigger), HubRejectedError)
    assert "refused" in describe(trigger, None)


async def test_an_argument_the_driver_cannot_encode_is_a_rejection(conn: asyncpg.Connection) -> None:
    # A lone surrogate has no UTF-8 form; a string is no integer.
    for sql, value in (("SELECT $1::text", "\udc80"), ("SELECT $1::integer", "not a number")):
        exc = await raised(lambda s=sql, v=value: conn.fetchval(s, v))  # type: ignore[misc]
        assert isinstance(exc, asyncpg.DataError) and "query argument" in str(exc)
        assert isinstance(map_hub_error(exc), HubRejectedError)


async def test_a_lost_connection_is_transient(pg_schema: tuple[str, str], conn: asyncpg.Connection) -> None:
    victim = await hub_connect(pg_schema[0])
    try:
        pid = victim.get_server_pid()
        await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        exc = await raised(lambda: victim.fetchval("SELECT 1"))
    finally:
        victim.terminate()
    # Terminated by an administrator (57P01), found closed, or caught mid-read by the driver
    # (InternalClientError, an InterfaceError): which one depends on timing, and all of them pass.
    lost = (asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError, OSError)  # fmt: skip
    assert isinstance(exc, lost), exc
    assert isinstance(map_hub_error(exc), HubUnavailableError) and is_transient(exc)
    closed = await raised(lambda: victim.fetchval("SELECT 1"))
    assert isinstance(closed, lost) and is_transient(closed)


async def test_a_refused_connection_and_a_timeout_are_transient(conn: asyncpg.Connection) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once the socket is closed
    refused = await raised(lambda: asyncpg.connect(f"postgresql://x@127.0.0.1:{port}/x", timeout=5))
    assert isinstance(refused, OSError)
    assert isinstance(map_hub_error(refused), HubUnavailableError)
    slow = await raised(lambda: conn.fetchval("SELECT pg_sleep(5)", timeout=0.1))
    assert isinstance(slow, asyncio.TimeoutError)
    assert is_transient(slow) and not is_rejection(slow)


async def test_a_deadlock_is_transient(pg_schema: tuple[str, str], conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE TABLE d (id integer PRIMARY KEY); INSERT INTO d VALUES (1), (2)")
    other = await hub_connect(pg_schema[0])
    try:
        await other.execute(f"SET search_path TO {pg_schema[1]}")
        first, second = conn.transaction(), other.transaction()
        await first.start()
        await second.start()
        await conn.execute("UPDATE d SET id = id WHERE id = 1")
        await other.execute("UPDATE d SET id = id WHERE id = 2")
        results = await asyncio.gather(
            conn.execute("UPDATE d SET id = id WHERE id = 2"),
            other.execute("UPDATE d SET id = id WHERE id = 1"),
            return_exceptions=True,
        )
        await first.rollback()
        await second.rollback()
    finally:
        await other.close()
    (deadlock,) = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(deadlock, asyncpg.DeadlockDetectedError)
    assert isinstance(map_hub_error(deadlock), HubUnavailableError)


async def test_other_server_errors_are_hub_faults(conn: asyncpg.Connection) -> None:
    missing = await raised(lambda: conn.fetchval("SELECT * FROM no_such_table"))
    mapped = map_hub_error(missing)
    assert isinstance(mapped, HubFaultError) and mapped.sqlstate == "42P01"
    assert not is_transient(missing) and not is_rejection(missing)
    assert isinstance(map_hub_error(RuntimeError("a bug")), HubFaultError)


def test_a_hub_error_maps_to_itself_and_descriptions_hide_the_password() -> None:
    too_new = SchemaTooNewError(9, 2)
    assert map_hub_error(too_new) is too_new and isinstance(too_new, StatusdError)
    assert too_new.details == {"found": 9, "known": 2} and not is_transient(too_new)
    already = HubRejectedError("refused", "22000")
    assert map_hub_error(already) is already
    assert isinstance(already, HubError)
    leaky = OSError("could not connect to postgresql://u:s3cret@host/db")
    assert "s3cret" not in describe(leaky, "s3cret")
    assert "s3cret" not in map_hub_error(leaky, "s3cret").message
