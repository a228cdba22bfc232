"""Seed scenario 4 (database unavailable), the markdown parts: writes during an outage reach the file.

The seed's "Postgres down" is a replicated daemon whose Postgres cannot be reached (nothing listens
on the DSN's port). SPEC §4.2 names the seed's ``wrote_to_cache`` ``wrote_to_store``. The seed
updates an item id it never created (``uuid4()``, version 1); here the item is created first, during
the outage too. ``wrote_to_markdown`` means the mirror has the change scheduled (docs/decisions.md),
so the file is polled until it shows the update (P8 measures how soon: ≤ 300 ms).
"""

from __future__ import annotations

from pathlib import Path

from daemon_support import running_daemon_with, until

UNREACHABLE = '\n[postgres]\ndsn = "postgresql://127.0.0.1:9/statusd_test"\n'


async def test_writes_during_database_unavailability(tmp_path: Path) -> None:
    """Given: the database is unavailable
    When: an AI client updates a work item
    Then: the write lands in the local store AND the markdown file
    """
    with running_daemon_with(tmp_path / "project", UNREACHABLE) as daemon:
        markdown_path = daemon.root / ".project_status.md"
        async with daemon.client("claude-code") as mcp_client:
            item = await mcp_client.call("create_work_item", item_type="task", title="Before the update")
            response = await mcp_client.call(
                "update_work_item", {"id": item["id"], "version": 1, "title": "Updated During Outage"}
            )

            assert response["success"] is True
            assert response["wrote_to_store"] is True
            assert response["wrote_to_markdown"] is True
            assert any(w.startswith("database_unavailable") for w in response["warnings"])

            cached_item = await mcp_client.call("query_work_item", id=response["id"])
            assert cached_item["title"] == "Updated During Outage"

        def markdown_content() -> str:
            return markdown_path.read_text() if markdown_path.exists() else ""

        await until(lambda: "Updated During Outage" in markdown_content(), what="the update in the markdown file")
        content = markdown_content()
        assert "Before the update" not in content
        # The degraded banner says the file shows the local store while Postgres is away (SPEC §9).
        assert content.split("\n")[1].startswith("> **statusd warning:** Postgres unreachable")
