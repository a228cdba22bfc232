"""The one place where SQLite's failures become statusd errors (SPEC §4.2 codes).

A store call that fails because of the file or the disk — not because of the caller's input — is
``unavailable``: the daemon is up, the store cannot do this right now, and the message says why
(``details.reason`` is machine-readable). Anything else stays a programming error (``internal``).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from statusd.errors import StatusdError, UnavailableError

log = logging.getLogger(__name__)

# Primary result codes (extended codes carry the primary one in their low byte).
_REASONS: dict[int, tuple[str, str]] = {
    sqlite3.SQLITE_FULL: (
        "disk_full",
        "the disk holding the store is full ({path}); reads still work, writes resume once space is freed",
    ),
    sqlite3.SQLITE_BUSY: (
        "locked",
        "the store {path} is locked by another program; retry shortly",
    ),
    sqlite3.SQLITE_LOCKED: (
        "locked",
        "the store {path} is locked by another program; retry shortly",
    ),
    sqlite3.SQLITE_READONLY: (
        "readonly",
        "the store {path} cannot be written (read-only file or file system); reads still work",
    ),
    sqlite3.SQLITE_CORRUPT: (
        "corrupt",
        "the store {path} is damaged; restart the daemon to move it aside (it is kept, never deleted)",
    ),
    sqlite3.SQLITE_NOTADB: (
        "corrupt",
        "the store {path} is not a database any more; restart the daemon to move it aside",
    ),
    sqlite3.SQLITE_IOERR: (
        "io_error",
        "the store {path} could not be read or written (I/O error); check the disk",
    ),
    sqlite3.SQLITE_CANTOPEN: (
        "cantopen",
        "the store {path} cannot be opened (was its directory removed?)",
    ),
}


IMPORT_GUARD = "statusd:import_in_progress"  # the text of the import guards' RAISE (schema 0008)


def translate(
    exc: sqlite3.Error, path: Path | str, *, reading: bool = False, conn: sqlite3.Connection | None = None
) -> StatusdError | None:
    """The statusd error for a SQLite failure of the store itself, or None for anything else.

    ``reading``: the read connection is query-only, so "read-only" there means a read function
    tried to write — a bug, not an unavailable store. ``conn`` (out of its transaction): where to
    look up the running import when an import guard refused the write.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.IntegrityError) and str(exc).startswith(IMPORT_GUARD):
        from statusd.store import import_runs

        if conn is not None and not conn.in_transaction:
            return import_runs.in_progress_error(conn, str(exc))
        return import_runs.ImportInProgressError(
            "an import that is still running holds this entity; retry after it finishes",
            {"reason": "import_in_progress", "entity": str(exc).rpartition(":")[2]},
        )
    if code is None or (reading and code & 0xFF == sqlite3.SQLITE_READONLY):
        return None
    known = _REASONS.get(code & 0xFF)
    if known is None:
        return None
    reason, template = known
    return UnavailableError(
        template.format(path=path), {"reason": reason, "sqlite_error": getattr(exc, "sqlite_errorname", str(code))}
    )


@contextlib.contextmanager
def mapped(path: Path | str, *, reading: bool = False, conn: sqlite3.Connection | None = None) -> Iterator[None]:
    """Re-raise the store's own SQLite failures as ``UnavailableError``; let everything else through."""
    try:
        yield
    except sqlite3.Error as exc:
        err = translate(exc, path, reading=reading, conn=conn)
        if err is None:
            raise
        if "sqlite_error" in err.details:
            log.warning("store unavailable: %s (%s)", err.message, err.details["sqlite_error"])
        raise err from exc
