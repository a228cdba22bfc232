"""MCP prompts and completions (SPEC §4.4): ``next_work``, ``handoff``, and argument completion.

Prompts are built from the same tool results an agent would fetch itself, so what a prompt says
is what the tools return. Completions answer from the store: work-item id prefixes, vendor names,
and the fixed vocabularies (item types).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from statusd.daemon import resources
from statusd.models import ITEM_TYPES
from statusd.store import vendors, workitems

if TYPE_CHECKING:
    from statusd.daemon.service import Service

MAX_COMPLETIONS = 100  # the protocol's limit per completion answer

PROMPTS = [
    types.Prompt(
        name="next_work",
        title="What to work on next",
        description="Ready work items, open conflicts and recent deployments, with how to claim one.",
        arguments=[
            types.PromptArgument(name="item_type", description="Only this item type (project/session/task/research)."),
            types.PromptArgument(name="vendor", description="Recent deployments of this vendor only."),
        ],
    ),
    types.Prompt(
        name="handoff",
        title="Session handoff",
        description="Summarise this session for the next one: the item worked on, its history, what is open.",
        arguments=[
            types.PromptArgument(name="work_item_id", description="The item this session worked on (id or prefix)."),
            types.PromptArgument(name="notes", description="Anything the next session must know."),
        ],
    ),
]
_ARGUMENTS = {p.name: {a.name for a in p.arguments or []} for p in PROMPTS}


async def get(service: Service, name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    args = dict(arguments or {})
    if name not in _ARGUMENTS:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {name}", data={"prompt": name})
    unknown = sorted(set(args) - _ARGUMENTS[name])
    if unknown:
        raise MCPError(
            code=types.INVALID_PARAMS,
            message=f"prompt {name} has no argument {unknown[0]!r}",
            data={"prompt": name, "unknown": unknown},
        )
    text = await (_next_work(service, args) if name == "next_work" else _handoff(service, args))
    return types.GetPromptResult(
        description=next(p.description for p in PROMPTS if p.name == name),
        messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
    )


async def _next_work(service: Service, args: dict[str, str]) -> str:
    query: dict[str, Any] = {"ready": True, "limit": 10}
    if args.get("item_type"):
        query["item_type"] = args["item_type"]
    ready = await _tool(service, "list_work_items", query)
    conflicts = await _tool(service, "list_conflicts", {})
    deployments_query: dict[str, Any] = {"limit": 5}
    if args.get("vendor"):
        deployments_query["vendor"] = args["vendor"]
    deployments = await _tool(service, "list_deployments", deployments_query)
    return "\n\n".join(
        [
            "Decide what to work on next in this project. Settle open conflicts first (resolve_conflict); "
            "otherwise claim the most important ready item with claim_work_item (its id, or no id for the "
            "highest-priority one), then work on it and update it with update_work_item.",
            _section("Ready work items (claimable now, highest priority first)", ready),
            _section("Open conflicts", conflicts),
            _section("Recent deployments", deployments),
        ]
    )


async def _handoff(service: Service, args: dict[str, str]) -> str:
    parts = [
        "Write a handoff for the next session: what was done, what is in progress, what is blocked and "
        "why, and the next concrete step. Record it with update_work_item on the item below (metadata is "
        "merged), or as a new session item with create_work_item(item_type='session') if there is none."
    ]
    ident = args.get("work_item_id")
    if ident:
        parts.append(
            _section("The item this session worked on", await _tool(service, "query_work_item", {"id": ident}))
        )
        parts.append(_section("Its recent history", await _tool(service, "query_history", {"id": ident, "limit": 10})))
    blocked = await _tool(service, "list_work_items", {"status": "blocked", "limit": 20})
    parts.append(_section("Blocked work items", blocked))
    parts.append(_section("Sync state", await _tool(service, "sync_status", {})))
    if args.get("notes"):
        parts.append("Notes from this session:\n" + args["notes"])
    return "\n\n".join(parts)


async def _tool(service: Service, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    outcome = await service.call(name, arguments, client="prompts")
    if outcome.is_error:
        error = outcome.payload.get("error", {})
        raise MCPError(code=types.INVALID_PARAMS, message=str(error.get("message", "invalid argument")), data=error)
    return {k: v for k, v in outcome.payload.items() if k not in ("success", "data_source")}


def _section(title: str, payload: dict[str, Any]) -> str:
    return f"## {title}\n```json\n{json.dumps(payload, indent=1, ensure_ascii=False, default=str)}\n```"


# --- completions -----------------------------------------------------------------------------------


def complete(service: Service, params: types.CompleteRequestParams) -> types.Completion:
    """Values for one argument of a prompt or a resource template, from the store."""
    ref, value = params.ref, params.argument.value
    what: str | None = None
    if isinstance(ref, types.PromptReference):
        if ref.name not in _ARGUMENTS:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {ref.name}")
        what = {"item_type": "item_type", "vendor": "vendor", "work_item_id": "id"}.get(params.argument.name)
    elif ref.uri == resources.ITEM_TEMPLATE:
        what = "id" if params.argument.name == "id" else None
    elif ref.uri == resources.VENDOR_TEMPLATE:
        what = "vendor" if params.argument.name == "name" else None
    else:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource template: {ref.uri}")
    if what == "id":
        values, total = service.store.read(workitems.complete_ids, value, MAX_COMPLETIONS)
    elif what == "vendor":
        values, total = service.store.read(vendors.complete_names, value, MAX_COMPLETIONS)
    elif what == "item_type":
        values = [t for t in ITEM_TYPES if t.startswith(value.lower())]
        total = len(values)
    else:
        values, total = [], 0  # a free-text argument: nothing to suggest
    return types.Completion(values=values, total=total, has_more=total > len(values))
