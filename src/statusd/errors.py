"""Every error statusd raises on purpose, under one root.

    StatusdError                      code "internal"
    ├── ValidationError               "validation_error"   details: {"fields": [{field, message, ...}]}
    ├── NotFoundError                 "not_found"          details: {entity, id}
    ├── VersionMismatchError          "version_mismatch"   details: {expected_version, actual_version,
    │                                                               last_updated_by}
    ├── DepthLimitError               "depth_limit"        details: {max_depth, depth}
    ├── CycleDetectedError            "cycle_detected"     details: {...}
    ├── DuplicateError                "duplicate"          details: {entity, field, value}
    ├── UnavailableError              "unavailable"        (the daemon or its store cannot serve now;
    │   │                                                   details.reason, e.g. "disk_full")
    │   └── DaemonNotRunningError     client only: nothing listens on the socket
    ├── ConfigError                   start-up only: a bad configuration key
    ├── StoreTooNewError              start-up only: the store was written by a newer statusd
    ├── StoreLockedError              start-up only: another daemon owns the store file
    │   └── SocketInUseError          start-up only: another daemon listens on the socket path
    └── HubError                      replication only (sync/errors.py maps asyncpg errors to these)
        ├── HubUnavailableError       transient: refused/reset/timed out/restarting; retry with backoff
        ├── HubRejectedError          permanent for one operation: the hub refuses its data
        └── HubFaultError             permanent for the hub as it stands (privileges, schema): retry slowly
            └── SchemaTooNewError     (sync/pg_schema.py) the hub is newer than this statusd: sync pauses

SQLite failures of the store become ``UnavailableError`` in one place, ``statusd.store.sqlite_errors``.

Each error builds its message from its identifiers and carries a JSON-safe ``details`` dict.
``to_payload`` is the single place that turns an error into the tool-error body of SPEC §4.2;
``from_payload`` is its inverse for the Python client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar


class StatusdError(Exception):
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationError(StatusdError):
    code = "validation_error"

    def __init__(self, fields: list[dict[str, Any]], message: str | None = None) -> None:
        self.fields = fields
        if message is None:
            parts = [f"{f.get('field') or '(arguments)'}: {f.get('message')}" for f in fields]
            message = "invalid input: " + "; ".join(parts)
        super().__init__(message, {"fields": fields})

    @classmethod
    def one(cls, field: str, message: str, **extra: Any) -> ValidationError:
        return cls([{"field": field, "message": message, **extra}])


class NotFoundError(StatusdError):
    code = "not_found"

    def __init__(self, entity: str, ident: str, field: str | None = None) -> None:
        self.entity = entity
        self.ident = ident
        details: dict[str, Any] = {"entity": entity, "id": ident}
        if field:
            details["field"] = field
        super().__init__(f"{entity} {ident!r} not found", details)


class VersionMismatchError(StatusdError):
    code = "version_mismatch"

    def __init__(
        self,
        entity: str,
        ident: str,
        expected_version: int,
        actual_version: int,
        last_updated_by: str | None = None,
    ) -> None:
        self.expected_version = expected_version
        self.actual_version = actual_version
        self.last_updated_by = last_updated_by
        super().__init__(
            f"version mismatch on {entity} {ident}: you sent version {expected_version}, "
            f"the current version is {actual_version} (last updated by {last_updated_by or 'unknown'}); "
            "re-read and retry",
            {
                "entity": entity,
                "id": ident,
                "expected_version": expected_version,
                "actual_version": actual_version,
                "last_updated_by": last_updated_by,
            },
        )


class DepthLimitError(StatusdError):
    code = "depth_limit"

    def __init__(self, depth: int, max_depth: int) -> None:
        self.depth = depth
        self.max_depth = max_depth
        super().__init__(
            f"work items nest at most {max_depth + 1} levels (depth 0-{max_depth}); this would reach depth {depth}",
            {"depth": depth, "max_depth": max_depth},
        )


class CycleDetectedError(StatusdError):
    code = "cycle_detected"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, details)


class DuplicateError(StatusdError):
    code = "duplicate"

    def __init__(self, entity: str, field: str, value: str) -> None:
        super().__init__(
            f"a {entity} with {field} {value!r} already exists",
            {"entity": entity, "field": field, "value": value},
        )


class UnavailableError(StatusdError):
    code = "unavailable"


class DaemonNotRunningError(UnavailableError):
    """Nothing listens on the daemon's socket (raised by the Python client)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(
            f"no statusd daemon is listening on {path} ({reason}); start it with 'statusd run'",
            {"path": str(path), "reason": reason},
        )


class ConfigError(StatusdError):
    """A configuration key is missing, malformed or contradictory (start-up only)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"configuration key {key!r}: {problem}", {"key": key})


class StoreTooNewError(StatusdError):
    """The store file was written by a newer statusd (start-up only; the file is left untouched)."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"store schema version {found} is newer than this statusd understands ({known}); upgrade statusd",
            {"found": found, "known": known},
        )


class StoreLockedError(StatusdError):
    """Another daemon already serves this store file."""

    def __init__(self, path: str, owner: str | None = None) -> None:
        who = f" (pid {owner})" if owner else ""
        super().__init__(
            f"another statusd daemon{who} already uses the store {path}; stop it first "
            "or point this one at another store.path",
            {"path": path},
        )


class SocketInUseError(StoreLockedError):
    """Another daemon already listens on this socket path (another project, or the same one)."""

    def __init__(self, path: str, owner_pid: str | None = None, owner: str | None = None) -> None:
        who = ", ".join(x for x in (f"pid {owner_pid}" if owner_pid else "", owner or "") if x)
        StatusdError.__init__(
            self,
            f"another statusd daemon{f' ({who})' if who else ''} already listens on the socket {path}; "
            "give this project its own socket: set 'socket.path' (or, where it is not set, a different "
            "'project') in its statusd.toml or the environment (STATUSD_SOCKET__PATH, STATUSD_PROJECT), "
            "or stop the other daemon",
            {"path": path, "keys": ["project", "socket.path"]},
        )


class HubError(StatusdError):
    """The replication hub (PostgreSQL) failed a request; never a tool answer by itself."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message, {"sqlstate": sqlstate} if sqlstate else None)


class HubUnavailableError(HubError):
    transient = True


class HubRejectedError(HubError):
    """No retry can make the hub accept this operation (a data error, a refused value)."""


class HubFaultError(HubError):
    """The hub cannot take any operation until someone fixes it (privileges, a damaged schema)."""


ERROR_CLASSES: dict[str, type[StatusdError]] = {
    cls.code: cls
    for cls in (
        StatusdError,
        ValidationError,
        NotFoundError,
        VersionMismatchError,
        DepthLimitError,
        CycleDetectedError,
        DuplicateError,
        UnavailableError,
    )
}


def from_payload(payload: dict[str, Any]) -> StatusdError:
    """Rebuild a typed error from a tool-error body (used by ``statusd.client``)."""
    body = payload.get("error", payload)
    code = str(body.get("code", "internal"))
    message = str(body.get("message", ""))
    details = body.get("details") or {}
    cls = ERROR_CLASSES.get(code, StatusdError)
    err = cls.__new__(cls)
    StatusdError.__init__(err, message, details)
    if isinstance(err, VersionMismatchError):
        err.expected_version = int(details.get("expected_version", 0))
        err.actual_version = int(details.get("actual_version", 0))
        err.last_updated_by = details.get("last_updated_by")
    elif isinstance(err, ValidationError):
        err.fields = list(details.get("fields", []))
    elif isinstance(err, NotFoundError):
        err.entity = str(details.get("entity", ""))
        err.ident = str(details.get("id", ""))
    elif isinstance(err, DepthLimitError):
        err.depth = int(details.get("depth", 0))
        err.max_depth = int(details.get("max_depth", 4))
    return err
