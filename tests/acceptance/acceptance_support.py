"""Seeding helpers for the seed scenarios: the seed's direct ORM rows, made through the MCP tools."""

from __future__ import annotations

from typing import Any

from statusd.client import StatusdClient

SEED_VENDOR_METADATA: dict[str, Any] = {
    "format_support": {"excel": True, "csv": True, "pdf": False, "ocr": False},
    "test_results": {"passing": 10, "total": 12, "skipped": 2},
    "extractor_version": "1.2.3",
    "manifest_compliant": True,
}


async def create_vendor(
    c: StatusdClient, name: str, *, operational: bool, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The seed's ``VendorExtractor(name=..., operational=..., metadata=...)`` row.

    A new vendor starts ``broken`` (SPEC §2.3); an operational one is flipped with
    ``update_vendor_status`` as a client would.
    """
    vendor = await c.call("create_vendor", name=name, metadata=metadata or {})
    if not operational:
        return vendor
    return await c.call("update_vendor_status", name=name, version=vendor["version"], status="operational")


async def create_work_item(c: StatusdClient, item_type: str, title: str, **fields: Any) -> dict[str, Any]:
    """The seed's ``WorkItem(...)`` row; its ``created_by`` is "claude-code"."""
    return await c.call("create_work_item", item_type=item_type, title=title, actor="claude-code", **fields)
