"""Classify and describe hub errors at the boundary (transient → retry; never leak the password)."""

from __future__ import annotations

import asyncio

import asyncpg

_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40")  # connection, resources, operator intervention, rollback


def is_transient(exc: BaseException) -> bool:
    """Errors that can pass on their own: refused/reset connections, timeouts, server restarts."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, ConnectionError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return False


def describe(exc: BaseException, secret: str | None) -> str:
    """A one-line description with any occurrence of the password removed."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text[:300]
