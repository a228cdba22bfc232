"""Replace a file so a reader or a crash sees the old bytes or the new, never a mix (the mirror, migrate)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename, fsync the directory.

    The file keeps its mode (a new one gets 0644); ``private`` files (beside the store) are 0600.
    """
    tmp = path.with_name(f".{path.name}.statusd-tmp")
    mode = 0o600 if private else 0o644
    if not private:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o777
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if private:
            os.fchmod(fd, 0o600)  # whatever the umask or a leftover temp file's mode
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
