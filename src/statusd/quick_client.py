"""A tiny blocking MCP client for the CLI: newline-delimited JSON-RPC over the daemon's socket.

The official SDK costs over a second to import; a CLI command must answer within 150 ms (SPEC
§11 P13). A command needs three messages — ``initialize``, ``notifications/initialized`` and
``tools/call`` — so this module speaks exactly those with the standard library, and turns a tool
error into the same typed exceptions as :class:`statusd.client.StatusdClient`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import statusd
from statusd.errors import DaemonNotRunningError as DaemonNotRunningError  # re-exported for callers
from statusd.errors import StatusdError, from_payload

PROTOCOL_VERSION = "2025-11-25"  # the newest revision reachable through the initialize handshake
HELLO_PREFIX = b"#statusd "  # the bridge's preamble line (statusd.daemon.transport.HELLO_PREFIX)
STORE_CHECK_SECONDS = 5.0


class WrongDaemonError(StatusdError):
    code = "unavailable"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the daemon on {path} serves another project: {reason}", {"socket": str(path)})


class ProtocolError(StatusdError):
    """The daemon answered something that is not the JSON-RPC this client expects."""


class QuickClient:
    """``with QuickClient(path) as c: c.call("list_work_items", {...})``."""

    def __init__(
        self, path: Path | str, *, client_name: str = "statusd-cli", timeout_s: float = 60.0, store: Path | None = None
    ) -> None:
        self.path = Path(path)
        self.client_name = client_name
        self.store = store  # when given, the daemon must serve this store file (else WrongDaemonError)
        self.timeout_s = timeout_s
        self.server_info: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 1

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise DaemonNotRunningError(self.path, exc.strerror or str(exc)) from None
        self._sock = sock
        if self.store is not None:
            self._check_store()
        result = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": self.client_name, "version": statusd.__version__},
            },
        )
        self.server_info = dict(result.get("serverInfo") or {})
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _check_store(self) -> None:
        """Name the store we expect; a daemon serving another one (a shared socket.path) refuses."""
        assert self._sock is not None
        hello = HELLO_PREFIX + json.dumps({"store": str(self.store)}).encode() + b"\n"
        try:
            self._sock.sendall(hello)
        except OSError as exc:
            raise DaemonNotRunningError(self.path, exc.strerror or str(exc)) from None
        self._sock.settimeout(STORE_CHECK_SECONDS)
        try:
            line = self._read_line()
        finally:
            self._sock.settimeout(self.timeout_s)
        if not line.startswith(HELLO_PREFIX):
            raise ProtocolError("the daemon did not answer the store check")
        try:
            answer = json.loads(line[len(HELLO_PREFIX) :])
        except ValueError:
            raise ProtocolError("the daemon's answer to the store check is not JSON") from None
        if isinstance(answer, dict) and answer.get("error"):
            raise WrongDaemonError(self.path, str(answer["error"]))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool; return its structured result or raise its typed error."""
        result = self.request("tools/call", {"name": tool, "arguments": arguments or {}})
        payload = result.get("structuredContent")
        if not isinstance(payload, dict):
            payload = _text_payload(result)
        if result.get("isError"):
            raise from_payload(payload)
        return payload

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ident = self._next_id
        self._next_id += 1
        self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        while True:
            message = self._receive()
            if message.get("id") != ident or "method" in message:
                continue  # a notification, or a request from the server this client does not serve
            if "error" in message:
                error = message["error"] or {}
                raise ProtocolError(f"{method} failed: {error.get('message', error)}", {"jsonrpc_error": error})
            result = message.get("result")
            if not isinstance(result, dict):
                raise ProtocolError(f"{method} answered without a result object")
            return result

    def _send(self, message: dict[str, Any]) -> None:
        assert self._sock is not None, "connect() first"
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise DaemonNotRunningError(self.path, exc.strerror or str(exc)) from None

    def _read_line(self) -> bytes:
        assert self._sock is not None, "connect() first"
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError as exc:  # includes the timeout
                raise DaemonNotRunningError(self.path, str(exc) or type(exc).__name__) from None
            if not chunk:
                raise DaemonNotRunningError(self.path, "the daemon closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _receive(self) -> dict[str, Any]:
        line = self._read_line()
        try:
            message = json.loads(line)
        except ValueError:
            raise ProtocolError("the daemon sent a line that is not JSON") from None
        if not isinstance(message, dict):
            raise ProtocolError("the daemon sent a JSON-RPC message that is not an object")
        return message


def _text_payload(result: dict[str, Any]) -> dict[str, Any]:
    for block in result.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "text":
            loaded = json.loads(block.get("text") or "null")
            if isinstance(loaded, dict):
                return loaded
    raise ProtocolError("the daemon returned a result without JSON content")
