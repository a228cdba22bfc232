"""Seed scenario 2: concurrent work item updates with optimistic locking and an audit trail.

The seed's clients pass ``created_by`` in ``update_work_item``; statusd reads it as a deprecated
alias of ``actor`` and says so in ``warnings``. The seed's "5-10 ms per update" is benchmark
figure P4, not a test.
"""

from __future__ import annotations

from typing import Any

import pytest
from acceptance_support import create_work_item

from statusd.client import StatusdClient, VersionMismatchError


async def work_item_with_version(c: StatusdClient) -> dict[str, Any]:
    """Create a work item with initial version=1."""
    item = await create_work_item(c, "task", "Test Task", metadata={"estimated_hours": 2.0})
    assert item["version"] == 1
    return item


async def test_optimistic_locking_prevents_conflicts(daemon):
    """Given: two AI clients (claude-code, claude-desktop) access the same work item
    When: both attempt updates with the same version
    Then: the first succeeds, the second fails with a version mismatch error
    """
    async with daemon.client("claude-code") as mcp_client1, daemon.client("claude-desktop") as mcp_client2:
        item_id = str((await work_item_with_version(mcp_client1))["id"])

        # Client 1 updates with version=1
        response1 = await mcp_client1.call(
            "update_work_item",
            {"id": item_id, "version": 1, "metadata": {"estimated_hours": 3.0}, "created_by": "claude-code"},
        )
        assert response1["success"] is True
        assert response1["version"] == 2  # version incremented
        assert any(w.startswith("deprecated_argument") for w in response1["warnings"])

        # Client 2 attempts an update with the stale version=1
        with pytest.raises(VersionMismatchError) as exc_info:
            await mcp_client2.call(
                "update_work_item",
                {"id": item_id, "version": 1, "metadata": {"estimated_hours": 4.0}, "created_by": "claude-desktop"},
            )
        assert "version mismatch" in str(exc_info.value).lower()
        assert exc_info.value.expected_version == 1
        assert exc_info.value.actual_version == 2

        # Audit trail
        final_item = await mcp_client1.call("query_work_item", {"id": item_id})
        assert final_item["metadata"]["estimated_hours"] == 3.0
        assert final_item["version"] == 2
        assert final_item["created_by"] == "claude-code"
        assert "updated_at" in final_item
        assert final_item["updated_by"] == "claude-code"


async def test_concurrent_updates_immediate_visibility(daemon):
    """Given: several AI clients querying work items
    When: one client updates a work item
    Then: the other clients see the change on their next query
    """
    async with daemon.client("claude-code") as mcp_client1, daemon.client("claude-desktop") as mcp_client2:
        item_id = str((await work_item_with_version(mcp_client1))["id"])

        await mcp_client1.call("update_work_item", {"id": item_id, "version": 1, "title": "Updated by Client 1"})

        result = await mcp_client2.call("query_work_item", {"id": item_id})
        assert result["title"] == "Updated by Client 1"
        assert result["version"] == 2
