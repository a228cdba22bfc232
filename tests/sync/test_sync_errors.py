"""sync/errors.py directly: which hub failures are worth retrying, and descriptions without the password."""

from __future__ import annotations

import asyncpg
import pytest

from statusd.sync.errors import describe, is_transient


def postgres_error(cls: type[asyncpg.PostgresError], sqlstate: str) -> asyncpg.PostgresError:
    err = cls("server said no")
    err.sqlstate = sqlstate  # what the driver sets from the server's answer
    return err


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError("refused"),
        ConnectionResetError("reset"),
        TimeoutError(),
        OSError("network is unreachable"),
        asyncpg.InterfaceError("connection is closed"),
        postgres_error(asyncpg.PostgresError, "08006"),  # connection failure
        postgres_error(asyncpg.PostgresError, "53300"),  # too many connections
        postgres_error(asyncpg.PostgresError, "57P01"),  # admin shutdown
        postgres_error(asyncpg.PostgresError, "40001"),  # serialization failure
    ],
    ids=lambda e: f"{type(e).__name__}-{getattr(e, 'sqlstate', '')}",
)
def test_passing_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        postgres_error(asyncpg.PostgresError, "22P05"),  # untranslatable character (a NUL)
        postgres_error(asyncpg.PostgresError, "42P01"),  # undefined table
        postgres_error(asyncpg.PostgresError, "23505"),  # unique violation
        ValueError("a bug"),
        KeyError("verdict"),
    ],
    ids=lambda e: f"{type(e).__name__}-{getattr(e, 'sqlstate', '')}",
)
def test_lasting_failures_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_describe_is_one_line_without_the_password_and_bounded() -> None:
    exc = OSError("could not connect to postgresql://statusd:hunter2@db/hub\nsecond line hunter2")
    text = describe(exc, "hunter2")
    assert text == "OSError: could not connect to postgresql://statusd:***@db/hub"
    assert "hunter2" not in describe(ValueError("hunter2 " * 100), "hunter2")
    assert len(describe(ValueError("x" * 1000), None)) == 300
    assert describe(TimeoutError(), "pw") == "TimeoutError"
