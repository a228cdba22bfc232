"""An exclusive lock file that names its holder: one daemon per store, one per socket."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from statusd.errors import StoreLockedError


def take(lock_path: Path, what: str) -> int:
    """Lock ``lock_path`` (created 0600) for this process and write our pid into it; return the fd.

    The lock lives as long as the descriptor (``os.close`` releases it, and so does any exit, even
    kill -9). Held by another process: ``StoreLockedError`` naming ``what`` and the holder's pid.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask, and a lock file left wider by an older statusd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or None
        os.close(fd)
        raise StoreLockedError(what, owner) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
