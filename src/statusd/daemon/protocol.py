"""The MCP server object: every request the daemon serves through the SDK (SPEC §4.1, §4.4).

Tools, resources with subscriptions, prompts, completions and logging. Per-connection state the
SDK does not keep (subscriptions, log level) lives in the connection's
:class:`~statusd.daemon.sessions.Session`, found through :data:`sessions.CURRENT`.
"""

from __future__ import annotations

import contextvars
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params

import statusd
from statusd.daemon import prompts, resources, sessions
from statusd.daemon.service import Service
from statusd.daemon.sessions import ProgressNotices
from statusd.daemon.tools import TOOLS, input_schema
from statusd.limits import finite_answer

# The bridge's ``--client NAME`` for the connection being served (set per connection task).
CONNECTION_CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("statusd_client", default=None)


def tool_listing() -> types.ListToolsResult:
    """``tools/list``: the tool table, with each tool's annotations derived from its declaration."""
    return types.ListToolsResult(
        tools=[
            types.Tool(
                name=t.name,
                description=t.description,
                input_schema=input_schema(t),
                annotations=types.ToolAnnotations.model_validate(t.annotations()),
            )
            for t in TOOLS.values()
        ]
    )


def unknown_tool(name: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})


def encode_tool_result(payload: dict[str, Any], is_error: bool) -> types.CallToolResult:
    text, finite = finite_answer(payload)  # standard JSON: never Infinity or NaN
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=finite, is_error=is_error
    )


def _no_cursor(params: types.PaginatedRequestParams | None) -> None:
    """Every list fits one page, so no cursor was ever handed out: any cursor is invalid."""
    if params is not None and params.cursor is not None:
        raise MCPError(code=types.INVALID_PARAMS, message="Invalid cursor", data={"cursor": params.cursor})


def _session() -> sessions.Session:
    session = sessions.CURRENT.get()
    if session is None:  # pragma: no cover - every connection sets one
        raise MCPError(code=types.INTERNAL_ERROR, message="no session for this connection")
    return session


class _Listen(ListenHandler):
    """``subscriptions/listen`` (2026-07-28): the SDK's stream, fed by what the store reports changed."""

    def __init__(self, sessions: sessions.Sessions) -> None:
        super().__init__(sessions.bus)
        self._sessions = sessions

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        uris = [u for u in params.notifications.resource_subscriptions or [] if resources.known(u)]
        token = await self._sessions.listen(uris)
        try:
            return await super().__call__(ctx, params)
        finally:
            self._sessions.unlisten(token)


def build_mcp_server(service: Service, watchers: sessions.Sessions) -> Server[Any]:
    tools = tool_listing()

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        _no_cursor(params)
        return tools

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in TOOLS:
            raise unknown_tool(params.name)

        token = progress_token_from_params(ctx.params)
        writer = _session().writer
        progress = ProgressNotices(writer, token) if token is not None and writer is not None else None
        outcome = await service.call(params.name, params.arguments, client=_client_name(ctx), progress=progress)
        if progress is not None:
            await progress.flush()  # every progress notification goes out before the result
        return encode_tool_result(outcome.payload, outcome.is_error)

    async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        _no_cursor(params)
        return types.ListResourcesResult(resources=resources.RESOURCES)

    async def list_templates(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        _no_cursor(params)
        return types.ListResourceTemplatesResult(resource_templates=resources.TEMPLATES)

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        mime, text = await resources.read(service, params.uri)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=params.uri, mime_type=mime, text=text)]
        )

    async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        if not resources.known(params.uri):
            raise MCPError(code=resources.RESOURCE_NOT_FOUND, message=f"Resource not found: {params.uri}")
        # Remember what the subscriber could read now: the first notice is for a real change.
        _session().subscriptions[params.uri] = await resources.fingerprint(service, params.uri)
        return types.EmptyResult()

    async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        _session().subscriptions.pop(params.uri, None)
        return types.EmptyResult()

    async def list_prompts(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        _no_cursor(params)
        return types.ListPromptsResult(prompts=prompts.PROMPTS)

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return await prompts.get(service, params.name, params.arguments)

    async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        return types.CompleteResult(completion=prompts.complete(service, params))

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        _session().log_level = params.level
        return types.EmptyResult()

    server: Server[Any] = Server(
        "statusd",
        version=statusd.__version__,
        instructions="Project status and work items. Writes need the entity's current version. Every tool "
        "takes an optional actor: who is acting (default: the client's name). Subscribe to the resource "
        "statusd://status to watch the project.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_subscriptions_listen=_Listen(watchers),
    )
    # Registered directly: the constructor's on_set_logging_level warns that 2026-07-28 dropped
    # logging, but every handshake-era host still uses it.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server


def _client_name(ctx: Any) -> str | None:
    """The bridge's ``--client`` wins; else the name the MCP client declared; else None."""
    named = CONNECTION_CLIENT.get()
    if named:
        return named
    params = getattr(getattr(ctx, "session", None), "client_params", None)
    name = getattr(getattr(params, "client_info", None), "name", None)
    return str(name) if name else None
