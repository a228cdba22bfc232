"""Translate hub (asyncpg) errors at the boundary and say which ones can pass (STYLE habit 2).

Three kinds, because each asks for a different reaction:

* transient (:class:`HubUnavailableError`) — refused, reset or timed-out connections, a server
  shutting down or starting, too many connections, a deadlock or serialisation failure: reconnect
  and retry with backoff and jitter;
* rejected (:class:`HubRejectedError`) — the hub refuses the data of the operation it was sent (a
  data exception, a violated constraint, a trigger raising, a value too large): no retry can help,
  so the operation is set aside and the queue goes on;
* fault (:class:`HubFaultError`) — anything else the server answers (privileges, missing objects,
  internal errors): not the operation's fault, so nothing is set aside; retried slowly and logged.

The password never appears in a description.
"""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.exceptions import InternalClientError

from statusd.errors import HubError, HubFaultError, HubRejectedError, HubUnavailableError

# SQLSTATE classes: 08 connection, 53 resources, 57 operator intervention, 40 transaction rollback.
_TRANSIENT_CLASSES = ("08", "53", "57", "40")
# 22 data exception, 23 integrity constraint, P0 PL/pgSQL raise (triggers), 54 program limit.
_REJECTED_CLASSES = ("22", "23", "P0", "54")


def map_hub_error(exc: BaseException, secret: str | None = None) -> HubError:
    """The :class:`HubError` that stands for ``exc`` (a HubError is returned as it is)."""
    if isinstance(exc, HubError):
        return exc
    text = describe(exc, secret)
    # InternalClientError: the driver caught mid-operation by a dropped connection; a new one passes.
    if isinstance(exc, (OSError, asyncio.TimeoutError, ConnectionError, asyncpg.InterfaceError, InternalClientError)):
        return HubUnavailableError(text)
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        if state[:2] in _TRANSIENT_CLASSES:
            return HubUnavailableError(text, state)
        if state[:2] in _REJECTED_CLASSES:
            return HubRejectedError(text, state)
        return HubFaultError(text, state)
    return HubFaultError(text)


def is_transient(exc: BaseException) -> bool:
    """Errors that can pass on their own: refused/reset connections, timeouts, server restarts."""
    return map_hub_error(exc).transient


def is_rejection(exc: BaseException) -> bool:
    """Whether the hub refused the data it was sent (so the operation, not the link, is at fault)."""
    return isinstance(map_hub_error(exc), HubRejectedError)


def describe(exc: BaseException, secret: str | None) -> str:
    """A one-line description with any occurrence of the password removed."""
    if isinstance(exc, HubError):
        text = exc.message
    else:
        text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text[:300]
