"""MCP resources (SPEC §4.4): the project status as a document and as JSON, work items and vendors.

Every resource is a tool result read through :class:`~statusd.daemon.service.Service`, so a
resource and the tool it mirrors never disagree. ``statusd://status`` is the markdown mirror's
document (SPEC §9), as ``generate_full_status`` with ``output_format: "markdown"`` returns it.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import mcp_types as types
from mcp.shared.exceptions import MCPError

if TYPE_CHECKING:
    from statusd.daemon.service import Service

STATUS_URI = "statusd://status"
STATUS_JSON_URI = "statusd://status.json"
ITEM_PREFIX = "statusd://work-items/"
VENDOR_PREFIX = "statusd://vendors/"
ITEM_TEMPLATE = ITEM_PREFIX + "{id}"
VENDOR_TEMPLATE = VENDOR_PREFIX + "{name}"
RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource
MARKDOWN = "text/markdown"
JSON = "application/json"

RESOURCES = [
    types.Resource(
        uri=STATUS_URI,
        name="status",
        title="Project status",
        description="The project status document: vendors, work items, deployments, enhancements, sync.",
        mime_type=MARKDOWN,
    ),
    types.Resource(
        uri=STATUS_JSON_URI,
        name="status.json",
        title="Project status (JSON)",
        description="generate_full_status as JSON.",
        mime_type=JSON,
    ),
]

TEMPLATES = [
    types.ResourceTemplate(
        uri_template=ITEM_TEMPLATE,
        name="work-item",
        title="Work item",
        description="One work item (id or unique prefix) with parent chain, children and dependencies.",
        mime_type=JSON,
    ),
    types.ResourceTemplate(
        uri_template=VENDOR_TEMPLATE,
        name="vendor",
        title="Vendor",
        description="One vendor by name (case-insensitive).",
        mime_type=JSON,
    ),
]


def item_uri(ident: str) -> str:
    return ITEM_PREFIX + quote(ident, safe="")


def vendor_uri(name: str) -> str:
    return VENDOR_PREFIX + quote(name, safe="")


async def read(service: Service, uri: str) -> tuple[str, str]:
    """``(mime type, text)`` of a resource; MCPError for an unknown or missing one."""
    if uri == STATUS_URI:
        report = await _tool(service, uri, "generate_full_status", {"output_format": "markdown"})
        return MARKDOWN, render_status_document(report)
    if uri == STATUS_JSON_URI:
        return JSON, _json(await _tool(service, uri, "generate_full_status", {}))
    if uri.startswith(ITEM_PREFIX) and len(uri) > len(ITEM_PREFIX):
        ident = unquote(uri[len(ITEM_PREFIX) :])
        arguments = {"id": ident, "include_children": True, "include_dependencies": True}
        return JSON, _json(await _tool(service, uri, "query_work_item", arguments))
    if uri.startswith(VENDOR_PREFIX) and len(uri) > len(VENDOR_PREFIX):
        name = unquote(uri[len(VENDOR_PREFIX) :])
        return JSON, _json(await _tool(service, uri, "query_vendor_status", {"name": name}))
    raise MCPError(code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}", data={"uri": uri})


def known(uri: str) -> bool:
    """Whether ``uri`` names a resource this server serves (existing or not yet)."""
    return uri in (STATUS_URI, STATUS_JSON_URI) or any(
        uri.startswith(p) and len(uri) > len(p) for p in (ITEM_PREFIX, VENDOR_PREFIX)
    )


async def fingerprint(service: Service, uri: str) -> str | None:
    """What a subscriber was told about, compactly; None for the status (every change changes it)."""
    if uri in (STATUS_URI, STATUS_JSON_URI):
        return None
    try:
        _, text = await read(service, uri)
    except MCPError as exc:
        text = f"error {exc.error.code}: {exc.error.message}"  # gone (deleted, archived): one notice
    # The envelope's warnings (staleness, outage) are not the item's content.
    return hashlib.sha256(_without_envelope(text).encode()).hexdigest()


def _without_envelope(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        for key in ("warnings", "data_source", "success"):
            data.pop(key, None)
    return json.dumps(data, sort_keys=True)


async def _tool(service: Service, uri: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    outcome = await service.call(name, arguments, client="resources")
    if not outcome.is_error:
        return outcome.payload
    error = outcome.payload.get("error", {})
    code = RESOURCE_NOT_FOUND if error.get("code") == "not_found" else types.INVALID_PARAMS
    raise MCPError(code=code, message=f"{error.get('message', 'cannot read')} ({uri})", data={"uri": uri, **error})


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


def render_status_document(report: dict[str, Any]) -> str:
    """The §9 markdown document: the mirror's rendering, as ``generate_full_status`` returns it."""
    return str(report["markdown"])
