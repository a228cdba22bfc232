"""The socket path appears only once the socket listens: a client racing the daemon's start-up
either finds no socket (and retries) or connects; it is never refused by a bound, deaf socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from daemon_support import short_socket_dir
from statusd.daemon import listener


def test_the_path_appears_only_after_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    path = short_socket_dir() / "d.sock"
    seen: list[bool] = []
    original = socket.socket.listen

    def listen(self: socket.socket, *args: Any) -> None:
        seen.append(path.exists())
        original(self, *args)

    monkeypatch.setattr(socket.socket, "listen", listen)
    sock, lock, ident = listener.listen(path)
    try:
        assert seen == [False], "the socket path existed before the socket listened"
        st = os.stat(path)
        assert (st.st_dev, st.st_ino) == ident and st.st_mode & 0o777 == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
        assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == ["d.sock"]
    finally:
        sock.close()
        lock.release()


def test_a_path_too_long_for_a_staging_name_binds_in_place(tmp_path: Path) -> None:
    base = short_socket_dir()
    room = listener.SUN_PATH_MAX - len(os.fsencode(base)) - 1
    path = base / ("s" * room)  # fits exactly: a longer staging name would not
    assert listener._staging_name(path) == path
    sock, lock, _ = listener.listen(path)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        sock.close()
        lock.release()
