"""Seed scenario 5: migration data preservation, through the ``migrate_legacy_markdown`` tool.

The seed's fixture abbreviates its file ("... (43 more vendors)"); here the full file is written:
45 vendors, 12 deployments, 8 enhancements, 25 session prompts, in the seed's format. Its
``migration_service.inject_failure("vendor_count_mismatch")`` is the daemon's
``STATUSD_MIGRATION_FAIL`` switch (a test hook, like ``STATUSD_CRASH_AT``). "No vendors migrated"
is checked through the tools instead of the seed's ORM session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_support import DaemonProcess


def legacy_content() -> str:
    vendors = [
        f"- vendor_{i}: {'operational' if i % 5 else 'broken'} (10/12 tests passed, 2 skipped) [Excel, CSV] v1.2.{i}"
        for i in range(1, 46)
    ]
    vendors[0] = "- vendor_1: operational (10/12 tests passed, 2 skipped) [Excel, CSV] v1.2.3"
    vendors[1] = "- vendor_2: broken (5/10 tests passed, 0 skipped) [PDF, OCR] v2.0.1"
    deployments = []
    for i in range(12):
        deployments += [
            f"### 2025-10-{i + 1:02d} - PR #{100 + i}",
            "- Commit: abc123..." if i % 2 == 0 else f"- Commit: abc123{i:x}...",  # the seed's, and 7-hex ones
            "- Work Items: #T001, #T002",
            "- Vendors: vendor_1, vendor_2",
            "- Tests: 45 passed, 0 failed",
            "- Constitutional Compliance: ✓",
        ]
    enhancements = [
        f"- Enhancement {chr(65 + i)} (Priority: {('High', 'Medium', 'Low')[i % 3]}, Q{i % 4 + 1} 2026)"
        for i in range(8)
    ]
    sessions = []
    for i in range(25):
        sessions += [
            f"### Session 2025-10-{i + 1:02d}",
            "---",
            f"session_id: sess_{i + 1:03d}",
            "token_budget: 50000",
            "---",
            "Prompt content...",
        ]
    return "\n".join(
        [
            "",
            "# Project Status",
            "## Vendors (45 total)",
            *vendors,
            "## Deployments (12 total)",
            *deployments,
            "## Future Enhancements (8 total)",
            *enhancements,
            "## Session Prompts (25 total)",
            *sessions,
            "",
        ]
    )


@pytest.fixture
def legacy_markdown_file(tmp_path: Path) -> Path:
    """A legacy .project_status.md with complete data."""
    markdown_path = tmp_path / "legacy" / ".project_status.md"
    markdown_path.parent.mkdir()
    markdown_path.write_text(legacy_content())
    return markdown_path


@pytest.fixture
def failing_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(tmp_path / "project", env={"STATUSD_MIGRATION_FAIL": "vendor_count_mismatch"}).start()
    try:
        yield proc
        assert proc.stop() == 0, proc.log()
    finally:
        proc.cleanup()


async def test_complete_migration_with_validation(daemon, legacy_markdown_file) -> None:
    """Given: a legacy file with 45 vendors, 12 deployments, 8 enhancements, 25 sessions
    When: the migration runs
    Then: 100% of the data is preserved with all five reconciliation checks passing
    """
    original = legacy_markdown_file.read_text()
    async with daemon.client("claude-code") as c:
        result = await c.call("migrate_legacy_markdown", path=str(legacy_markdown_file))

        assert result["success"] is True
        assert result["data_preservation_percentage"] == 100.0
        rec = result["reconciliation"]
        assert rec["vendor_count"] == {"source": 45, "migrated": 45, "match": True}
        assert rec["deployment_history"] == {"source": 12, "migrated": 12, "match": True}
        assert rec["enhancements"] == {"source": 8, "migrated": 8, "match": True}
        assert rec["session_prompts"] == {"source": 25, "migrated": 25, "match": True}
        assert rec["vendor_metadata"]["fields_validated"] == [
            "operational_status", "test_results", "format_support", "version",
        ]  # fmt: skip
        assert rec["vendor_metadata"]["completeness_percentage"] == 100.0

        vendor1 = await c.call("query_vendor_status", name="vendor_1")
        assert vendor1["operational"] is True
        assert vendor1["metadata"]["test_results"] == {"passing": 10, "total": 12, "skipped": 2}
        assert vendor1["metadata"]["format_support"]["excel"] is True
        assert vendor1["metadata"]["format_support"]["csv"] is True
        assert vendor1["metadata"]["extractor_version"] == "1.2.3"

        # Abbreviated hashes are flagged; the seed's "abc123..." is too short to be a hash the store
        # accepts, so it is kept as written and marked unverified.
        assert len(result["abbreviated_commit_hashes"]) == 12
        deployments = (await c.call("list_deployments", limit=50))["deployments"]
        assert len(deployments) == 12
        flags = sorted(
            (
                "unverified" if d["metadata"].get("commit_hash_unverified") else "abbreviated",
                d["metadata"]["commit_hash"],
            )
            for d in deployments
        )
        assert flags[:6] == [("abbreviated", f"abc123{i:x}") for i in (1, 3, 5, 7, 9, 11)]
        assert flags[6:] == [("unverified", "abc123")] * 6
        assert all(
            d["metadata"].get("commit_hash_abbreviated") for d in deployments if len(d["metadata"]["commit_hash"]) == 7
        )
        assert {len(d["vendor_ids"]) for d in deployments} == {2}

        # The backup is kept; the file (not the mirror here) is left as it was.
        assert result["backup"] == str(legacy_markdown_file) + ".backup"
        with open(result["backup"], encoding="utf-8") as backup:  # noqa: ASYNC230 (a small local file)
            assert backup.read() == original
        assert legacy_markdown_file.read_text() == original

        # Re-running creates no duplicates.
        again = await c.call("migrate_legacy_markdown", path=str(legacy_markdown_file))
        assert again["success"] is True and again["created"] == 0
        assert len((await c.call("query_vendor_status"))["vendors"]) == 45
        sessions = await c.call("list_work_items", item_type="session", limit=100)
        assert sessions["total_count"] == 25


async def test_migration_rollback_on_validation_failure(failing_daemon, legacy_markdown_file) -> None:
    """Given: a reconciliation check fails
    When: the migration runs
    Then: everything is rolled back and the file is left as it was
    """
    async with failing_daemon.client("claude-code") as c:
        result = await c.call("migrate_legacy_markdown", path=str(legacy_markdown_file))

        assert result["success"] is False
        assert result["rollback_executed"] is True
        assert "validation_failed" in result["errors"]
        assert "vendor_count" in result["errors"]

        assert legacy_markdown_file.exists()
        assert legacy_markdown_file.read_text().startswith("\n# Project Status")  # the seed's fixture starts with \n
        assert not legacy_markdown_file.with_name(".project_status.md.backup").exists()

        assert (await c.call("query_vendor_status"))["vendors"] == []  # no vendors migrated
        assert (await c.call("list_deployments"))["deployments"] == []
        assert (await c.call("list_work_items", item_type="session"))["total_count"] == 0


async def test_dry_run_reports_and_changes_nothing(daemon, legacy_markdown_file) -> None:
    async with daemon.client("claude-code") as c:
        result = await c.call("migrate_legacy_markdown", path=str(legacy_markdown_file), dry_run=True)
        assert result["success"] is True and result["dry_run"] is True
        assert result["found"]["vendors"] == 45
        assert result["reconciliation"]["vendor_count"]["match"] is True
        assert (await c.call("query_vendor_status"))["vendors"] == []
        assert "backup" not in result
