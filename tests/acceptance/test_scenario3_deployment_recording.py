"""Seed scenario 3: recording a deployment event with its vendors and work items."""

from __future__ import annotations

from typing import Any

from acceptance_support import create_vendor, create_work_item

from statusd.client import StatusdClient


async def deployment_context(c: StatusdClient) -> dict[str, list[str]]:
    """Seed vendors and work items for the deployment."""
    vendors = [await create_vendor(c, name, operational=True) for name in ("vendor_a", "vendor_b")]
    work_items = [await create_work_item(c, "task", title) for title in ("Task 1", "Task 2")]
    return {"vendor_ids": [v["id"] for v in vendors], "work_item_ids": [w["id"] for w in work_items]}


async def test_deployment_event_recording(daemon):
    """Given: a deployment with a PR merge, affected vendors and work items
    When: it is recorded via the record_deployment MCP tool
    Then: the complete metadata is stored with its relationships
    """
    async with daemon.client("claude-code") as mcp_client:
        context = await deployment_context(mcp_client)
        deployment_data: dict[str, Any] = {
            "metadata": {
                "pr_number": 123,
                "pr_title": "Add vendor support for XYZ",
                "commit_hash": "a" * 40,  # valid 40-char hex
                "test_summary": {"passed": 45, "failed": 0, "skipped": 2},
                "constitutional_compliance": True,
            },
            "vendor_ids": context["vendor_ids"],
            "work_item_ids": context["work_item_ids"],
        }

        response = await mcp_client.call("record_deployment", deployment_data)

        assert response["success"] is True
        deployment_id = response["id"]

        deployment = await mcp_client.call("query_deployment", {"id": deployment_id})
        assert deployment["metadata"]["pr_number"] == 123
        assert deployment["metadata"]["pr_title"] == "Add vendor support for XYZ"
        assert deployment["metadata"]["commit_hash"] == "a" * 40
        assert deployment["metadata"]["test_summary"]["passed"] == 45
        assert deployment["metadata"]["constitutional_compliance"] is True
        assert "timestamp" in deployment

        assert len(deployment["affected_vendors"]) == 2
        vendor_names = [v["name"] for v in deployment["affected_vendors"]]
        assert "vendor_a" in vendor_names
        assert "vendor_b" in vendor_names

        assert len(deployment["related_work_items"]) == 2
        work_item_titles = [w["title"] for w in deployment["related_work_items"]]
        assert "Task 1" in work_item_titles
        assert "Task 2" in work_item_titles
