"""Seed scenario 4 (database unavailable), the markdown parts: writes during an outage reach the file,
and a lost local store falls back to the markdown as committed in git, else to the working copy.

The seed's "cache" is the local store; its cache-miss tests delete it. SPEC §6 names the fallbacks'
``data_source`` values ``git_history`` and ``markdown_file``, and their warning ``store_rebuilt``
(the seed's ``using_git_history_fallback`` / ``using_markdown_fallback``).

The seed's "Postgres down" is a replicated daemon whose Postgres cannot be reached (nothing listens
on the DSN's port). SPEC §4.2 names the seed's ``wrote_to_cache`` ``wrote_to_store``. The seed
updates an item id it never created (``uuid4()``, version 1); here the item is created first, during
the outage too. ``wrote_to_markdown`` means the mirror has the change scheduled (docs/decisions.md),
so the file is polled until it shows the update (P8 measures how soon: ≤ 300 ms).

The daemons run inside the test process (in its loop, or on a thread where a test stops and restarts
one): the fallbacks happen in the daemon's start-up and tool calls, the same code as in a process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon_support import until
from inprocess_support import ThreadedDaemon, inprocess_daemon

UNREACHABLE = '\n[postgres]\ndsn = "postgresql://127.0.0.1:9/statusd_test"\n'


async def test_writes_during_database_unavailability(tmp_path: Path) -> None:
    """Given: the database is unavailable
    When: an AI client updates a work item
    Then: the write lands in the local store AND the markdown file
    """
    async with inprocess_daemon(tmp_path / "project", extra_config=UNREACHABLE) as daemon:
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


async def _project_with_vendors(root: Path) -> ThreadedDaemon:
    """A project whose mirror file shows vendor_a and vendor_b operational; its store then deleted."""
    proc = ThreadedDaemon(root).start()
    async with proc.client("claude-code") as c:
        for name in ("vendor_a", "vendor_b"):
            vendor = await c.call("create_vendor", name=name)
            await c.call("update_vendor_status", name=name, version=vendor["version"], status="operational")
    mirror = root / ".project_status.md"
    await until(lambda: mirror.exists() and "vendor_b: operational" in mirror.read_text(), what="the mirror")
    assert proc.stop() == 0
    for suffix in ("", "-wal", "-shm"):
        Path(str(proc.store_path) + suffix).unlink(missing_ok=True)  # noqa: ASYNC240 (test set-up)
    return proc


async def test_cache_miss_falls_back_to_git(tmp_path: Path) -> None:
    proc = await _project_with_vendors(tmp_path / "project")
    try:
        git = ["git", "-C", str(proc.root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
        for args in (["init", "-q"], ["add", ".project_status.md"], ["commit", "-qm", "status"]):
            subprocess.run([*git, *args], check=True, capture_output=True, timeout=30)  # noqa: ASYNC221
        proc.start()
        async with proc.client("claude-code") as mcp_client:
            response = await mcp_client.call("query_vendor_status", {"name": "vendor_a"})
        assert response["success"] is True
        assert response["data_source"] == "git_history"
        assert any(w.startswith("store_rebuilt:") and "git_history" in w for w in response["warnings"])
        assert response["name"] == "vendor_a" and response["operational"] is True
        assert proc.stop() == 0
    finally:
        proc.cleanup()


async def test_final_fallback_to_markdown(tmp_path: Path) -> None:
    proc = await _project_with_vendors(tmp_path / "project")  # not a git repository
    try:
        proc.start()
        async with proc.client("claude-code") as mcp_client:
            response = await mcp_client.call("query_vendor_status", {"name": "vendor_a"})
        assert response["success"] is True
        assert response["data_source"] == "markdown_file"
        assert any(w.startswith("store_rebuilt:") and "markdown_file" in w for w in response["warnings"])
        assert response["name"] == "vendor_a"
        assert response["operational"] is True
        assert proc.stop() == 0
    finally:
        proc.cleanup()
