"""The daemon's listening socket, without the MCP SDK: bound before the SDK is even imported.

READY=1 promises "store open, socket listening" (SPEC §10); importing the SDK takes about a
second, so the daemon binds here first, reports READY, and hands the listening socket to
:class:`statusd.daemon.server.SocketServer` once the SDK has loaded. Connections made meanwhile
wait in the kernel's accept queue and are served in order.

The socket lives in a 0700 directory, is created 0600, and a lock file next to it keeps a second
daemon from replacing a running one's socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import struct
import sys
from pathlib import Path

from statusd.errors import ConfigError, SocketInUseError
from statusd.paths import SUN_PATH_MAX, socket_path_problem

BACKLOG = 256


def _staging_name(path: Path) -> Path:
    """A name beside ``path`` to bind before the rename; ``path`` itself when a longer name would
    not fit in ``sun_path``."""
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    return staged if len(os.fsencode(staged)) <= SUN_PATH_MAX else path


def peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid (SO_PEERCRED on Linux, LOCAL_PEERCRED on BSD/macOS)."""
    if hasattr(socket, "SO_PEERCRED"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])
    if sys.platform == "darwin":  # pragma: no cover - exercised on macOS only
        local_peercred = 0x001
        raw = sock.getsockopt(0, local_peercred, struct.calcsize("iih16i"))
        return int(struct.unpack("iih16i", raw)[1])
    return None  # pragma: no cover


def prepare_socket_dir(path: Path) -> None:
    """Create the socket's directory 0700 and refuse one that others can enter."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.parent.stat()
    if st.st_uid != os.getuid():
        raise PermissionError(f"socket directory {path.parent} belongs to another user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path.parent, 0o700)


class SocketLock:
    """An exclusive lock on ``<socket>.lock`` held for the daemon's life; it names its holder."""

    def __init__(self, path: Path, owner: str = "") -> None:
        self.path = path.with_name(path.name + ".lock")
        self.socket = path
        self.owner = owner
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, _, owner = os.pread(fd, 4096, 0).decode(errors="replace").partition("\n")
            os.close(fd)
            raise SocketInUseError(str(self.socket), pid.strip() or None, owner.strip() or None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{self.owner}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def listen(path: Path, owner: str = "") -> tuple[socket.socket, SocketLock, tuple[int, int]]:
    """Take the socket's lock, bind ``path`` 0600 and listen.

    Returns the listening socket, the held lock and the (device, inode) of the bound file (the only
    file at ``path`` this daemon may ever remove); the caller owns all three from then on.
    """
    problem = socket_path_problem(path)
    if problem is not None:
        raise ConfigError("socket.path", problem)
    prepare_socket_dir(path)
    lock = SocketLock(path, owner)
    lock.acquire()
    sock: socket.socket | None = None
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: we hold the lock, so no live daemon owns it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bound and listening under a temporary name, then renamed into place: a client that finds
        # the path can always connect (bound but not yet listening, it would be refused).
        staged = _staging_name(path)
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()  # left by a crashed daemon that had this pid
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(staged))
        except OSError as exc:
            raise ConfigError("socket.path", f"cannot listen on {path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        try:
            st = os.stat(staged)
            os.chmod(staged, 0o600)
            sock.listen(BACKLOG)
            if staged != path:
                os.rename(staged, path)
        except BaseException:
            with contextlib.suppress(OSError):
                staged.unlink()
            raise
        sock.setblocking(False)
        return sock, lock, (st.st_dev, st.st_ino)
    except BaseException:
        if sock is not None:
            sock.close()
        lock.release()
        raise


def remove_if_bound(path: Path, bound: tuple[int, int]) -> None:
    """Remove the socket file only if it is still the one this daemon bound (never another's)."""
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == bound:
            path.unlink()
