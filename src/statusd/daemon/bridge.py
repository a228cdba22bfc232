"""``statusd mcp``: a byte pump between stdin/stdout and the daemon's socket.

Imports only the standard library (and :mod:`statusd.paths`), so a stdio-only MCP client gets its
first answer within 150 ms of spawning us. Nothing but MCP traffic is written to stdout.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
from pathlib import Path

HELLO_PREFIX = b"#statusd "  # must match statusd.daemon.transport.HELLO_PREFIX
EX_UNAVAILABLE = 69


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def pump(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> int:
    """Copy bytes both ways until the daemon closes the connection."""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    sel.register(stdin_fd, selectors.EVENT_READ, "stdin")
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "stdin":
                    data = os.read(stdin_fd, 65536)
                    if not data:
                        sel.unregister(stdin_fd)
                        sock.shutdown(socket.SHUT_WR)  # let in-flight answers arrive, then the daemon closes
                        continue
                    sock.sendall(data)
                else:
                    data = sock.recv(65536)
                    if not data:
                        return 0
                    _write_all(stdout_fd, data)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sel.close()


def run(socket_path: Path, client: str | None) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(socket_path))
    except OSError as exc:
        sys.stderr.write(
            f"statusd mcp: no statusd daemon is listening on {socket_path} ({exc.strerror or exc}).\n"
            "Start it with 'statusd run' (or its systemd unit / launchd agent), or pass --socket/--config.\n"
        )
        return EX_UNAVAILABLE
    with sock:
        if client:
            sock.sendall(HELLO_PREFIX + json.dumps({"client": client}).encode() + b"\n")
        return pump(sock, sys.stdin.fileno(), sys.stdout.fileno())


def main(argv: list[str]) -> int:
    """Parse ``[--socket PATH] [--config PATH] [--client NAME]`` without argparse's import cost."""
    from statusd.paths import socket_path_for

    opts: dict[str, str] = {}
    it = iter(argv)
    for arg in it:
        if arg in ("-h", "--help"):
            sys.stderr.write(
                "usage: statusd mcp [--socket PATH] [--config PATH] [--client NAME]\n"
                "Bridge an MCP stdio client to the running statusd daemon.\n"
            )
            return 0
        name, eq, value = arg.partition("=")
        if name not in ("--socket", "--config", "--client"):
            sys.stderr.write(f"statusd mcp: unknown option {arg!r}\n")
            return 2
        if not eq:
            value = next(it, "")
        if not value:
            sys.stderr.write(f"statusd mcp: {name} needs a value\n")
            return 2
        opts[name[2:]] = value
    try:
        if "socket" in opts:
            path = Path(opts["socket"]).expanduser()
        else:
            path = socket_path_for(Path(opts["config"]).expanduser() if "config" in opts else None)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"statusd mcp: cannot read the configuration: {exc}\n")
        return 2
    return run(path, opts.get("client"))
