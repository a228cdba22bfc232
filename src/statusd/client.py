"""A typed Python client for a running daemon, over its Unix socket with the official MCP client.

    async with StatusdClient.connect(socket_path, client_name="my-agent") as c:
        item = await c.call("create_work_item", item_type="task", title="Write docs")
        await c.call("update_work_item", id=item["id"], version=item["version"], status="completed")

``call`` returns the structured result as a dict and raises the error classes of
:mod:`statusd.errors` (``VersionMismatchError`` with ``expected_version``/``actual_version``,
``NotFoundError``, ``ValidationError``, …) for tool errors.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

import statusd
from statusd.daemon.transport import HELLO_PREFIX, open_unix
from statusd.errors import (
    CycleDetectedError,
    DepthLimitError,
    DuplicateError,
    NotFoundError,
    StatusdError,
    UnavailableError,
    ValidationError,
    VersionMismatchError,
    from_payload,
)
from statusd.quick_client import DaemonNotRunningError, WrongDaemonError

STORE_CHECK_SECONDS = 5.0

__all__ = [
    "CycleDetectedError",
    "DaemonNotRunningError",
    "DepthLimitError",
    "DuplicateError",
    "NotFoundError",
    "StatusdClient",
    "StatusdError",
    "UnavailableError",
    "ValidationError",
    "VersionMismatchError",
    "WrongDaemonError",
]


def result_payload(result: types.CallToolResult) -> dict[str, Any]:
    """The tool's JSON result, from structured content or else the text content."""
    if result.structured_content is not None:
        return dict(result.structured_content)
    for block in result.content:
        if isinstance(block, types.TextContent):
            loaded = json.loads(block.text)
            if isinstance(loaded, dict):
                return loaded
    raise StatusdError("the daemon returned a result without JSON content")


class StatusdClient:
    def __init__(self, session: ClientSession) -> None:
        self.session = session

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        socket_path: Path | str,
        *,
        client_name: str = "statusd-client",
        bridge_hello: bool = False,
        store: Path | None = None,
    ) -> AsyncIterator[StatusdClient]:
        """Open one MCP session on the daemon's socket.

        ``bridge_hello`` sends ``client_name`` the way ``statusd mcp --client`` does, so it wins over
        the declared MCP client name. With ``store``, the daemon must serve that store file, else
        ``WrongDaemonError``: a socket shared by two projects' configurations never lets one
        project's commands touch the other's store.
        """
        path = Path(socket_path)
        try:
            reader, writer = await open_unix(str(path))
        except OSError as exc:
            raise DaemonNotRunningError(path, exc.strerror or str(exc)) from None
        try:
            hello: dict[str, str] = {"client": client_name} if bridge_hello else {}
            if store is not None:
                hello["store"] = str(store)
            if hello:
                await writer.send_line(HELLO_PREFIX + json.dumps(hello).encode() + b"\n")
            if store is not None:
                # A daemon older than the store check sends no answer: go on after a short wait.
                with anyio.move_on_after(STORE_CHECK_SECONDS):
                    answer = await reader.preamble()
                    if answer.get("error"):
                        raise WrongDaemonError(path, str(answer["error"]))
            info = types.Implementation(name=client_name, version=statusd.__version__)
            async with ClientSession(reader, writer, client_info=info) as session:
                await session.initialize()
                # The SDK lists the tools before the first call of each tool name (to validate
                # output schemas); listing once here keeps every call a single round trip.
                await session.list_tools()
                yield cls(session)
        except BaseExceptionGroup as group:
            # The session's task group wraps whatever leaves the ``async with`` body; callers
            # catch ``NotFoundError`` etc., not a group holding one.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
        finally:
            writer.close()

    async def call(self, tool: str, arguments: dict[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        args = {**(arguments or {}), **kwargs}
        try:
            result = await self.session.call_tool(tool, args)
        except MCPError as exc:
            if exc.error.code == types.INVALID_PARAMS and exc.error.message.startswith("Unknown tool"):
                raise NotFoundError("tool", tool) from None  # the protocol's -32602 (SPEC §4.4)
            raise
        payload = result_payload(result)
        if result.is_error:
            raise from_payload(payload)
        return payload

    async def list_tools(self) -> list[types.Tool]:
        return list((await self.session.list_tools()).tools)
