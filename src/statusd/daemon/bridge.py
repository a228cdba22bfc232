"""``statusd mcp``: a byte pump between stdin/stdout and the daemon's socket.

Imports only the standard library (and :mod:`statusd.paths`), so a stdio-only MCP client gets its
first answer within 150 ms of spawning us. Nothing but MCP traffic is written to stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import sys
from pathlib import Path

HELLO_PREFIX = b"#statusd "  # must match statusd.daemon.transport.HELLO_PREFIX
EX_UNAVAILABLE = 69
EX_CONFIG = 78
STORE_CHECK_SECONDS = 5.0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def pump(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> int:
    """Copy bytes both ways until the daemon closes the connection."""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    try:
        sel.register(stdin_fd, selectors.EVENT_READ, "stdin")
    except (PermissionError, ValueError):
        # epoll refuses regular files and /dev/null (``statusd mcp < requests.jsonl``): they are
        # always readable, so feed them as the socket accepts data instead.
        sel.close()
        return pump_file(sock, stdin_fd, stdout_fd)
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


def pump_file(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> int:
    """``pump`` for an input that cannot be polled: send it while the socket is writable, never
    blocking on a send while answers wait to be read (the daemon would stop reading requests)."""
    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    pending, eof = b"", False
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    try:
        while True:
            if not pending and not eof:
                pending = os.read(stdin_fd, 65536)
                if not pending:
                    eof = True
                    sock.shutdown(socket.SHUT_WR)  # let in-flight answers arrive, then the daemon closes
                    sel.modify(sock, selectors.EVENT_READ)
            for _, events in sel.select():
                if events & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        return 0
                    if data:
                        _write_all(stdout_fd, data)
                if events & selectors.EVENT_WRITE and pending:
                    with contextlib.suppress(BlockingIOError):
                        pending = pending[sock.send(pending) :]
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sel.close()


def run(socket_path: Path, client: str | None, store: Path | None = None) -> int:
    from statusd.paths import socket_path_problem

    problem = socket_path_problem(socket_path)
    if problem is not None:
        sys.stderr.write(f"statusd mcp: bad configuration key 'socket.path': {problem}.\n")
        return EX_CONFIG
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
        hello = {"client": client} if client else {}
        if store is not None:
            hello["store"] = str(store)
        if hello:
            sock.sendall(HELLO_PREFIX + json.dumps(hello).encode() + b"\n")
        if store is not None:
            problem = _store_refused(sock)
            if problem is not None:
                sys.stderr.write(f"statusd mcp: the daemon on {socket_path} serves another project: {problem}\n")
                return EX_CONFIG
        return pump(sock, sys.stdin.fileno(), sys.stdout.fileno())


def _store_refused(sock: socket.socket) -> str | None:
    """Read the daemon's answer to the store named in the hello (nothing else can come first)."""
    sock.settimeout(STORE_CHECK_SECONDS)  # a daemon from before the check never answers
    answer = b""
    try:
        while not answer.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                return "it closed the connection"
            answer += chunk
    except TimeoutError:
        return None
    finally:
        sock.settimeout(None)
    try:
        reply = json.loads(answer[len(HELLO_PREFIX) :]) if answer.startswith(HELLO_PREFIX) else {}
    except ValueError:
        reply = {}
    return str(reply["error"]) if isinstance(reply, dict) and reply.get("error") else None


def main(argv: list[str]) -> int:
    """Parse ``[--socket PATH] [--config PATH] [--client NAME]`` without argparse's import cost."""
    from statusd.paths import daemon_paths_for

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
    store: Path | None = None
    try:
        if "socket" in opts:
            path = Path(opts["socket"]).expanduser()
        else:
            # From the configuration: the daemon must serve this project's store, not another's.
            path, store = daemon_paths_for(Path(opts["config"]).expanduser() if "config" in opts else None)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"statusd mcp: cannot read the configuration: {exc}\n")
        return 2
    return run(path, opts.get("client"), store)
