"""``statusd migrate PATH [--dry-run]`` with no daemon running (it opens the store) and with one (the tool)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from mcp_support import statusd_cmd, until

from daemon_support import DaemonProcess

LEGACY = """# Project Status
## Vendors (2 total)
- vendor_a: operational (3/4 tests passed, 1 skipped) [CSV] v1.0
- vendor_b: broken
## Notes
Kept as written.
## TODO
- [ ] rotate the keys
"""


def migrate(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        statusd_cmd("migrate", *args, "--config", str(root / "statusd.toml")),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def project(tmp_path: Path) -> tuple[DaemonProcess, Path]:
    proc = DaemonProcess(tmp_path / "project")
    status = proc.root / ".project_status.md"
    status.write_text(LEGACY)
    return proc, status


def test_migrate_without_a_daemon_dry_run_failure_and_success(tmp_path: Path) -> None:
    proc, status = project(tmp_path)
    try:
        dry = migrate(proc.root, str(status), "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "dry run (nothing changed)" in dry.stdout and "vendor_count" in dry.stdout
        assert status.read_text() == LEGACY and not status.with_name(".project_status.md.backup").exists()

        failed = migrate(proc.root, str(status), env={"STATUSD_MIGRATION_FAIL": "vendor_count"})
        assert failed.returncode == 1
        assert "FAILED, rolled back" in failed.stdout
        assert status.read_text() == LEGACY

        done = migrate(proc.root, str(status))
        assert done.returncode == 0, done.stderr
        assert "migrated" in done.stdout and "data preserved: 100.0%" in done.stdout
        assert status.with_name(".project_status.md.backup").read_text() == LEGACY
        text = status.read_text()  # the mirror file now, with every other line kept in order
        assert text.startswith("<!-- statusd mirror")
        assert "## Notes\nKept as written.\n" in text and "## TODO\n" in text
        assert "- [ ] rotate the keys (task, medium) ^" in text
        assert "- vendor_a: operational (3/4 tests passed, 1 skipped) [CSV] v1.0 ^" in text
    finally:
        proc.cleanup()


async def test_migrate_through_a_running_daemon(tmp_path: Path) -> None:
    proc, status = project(tmp_path)
    other = proc.root / "old_status.md"
    other.write_text(LEGACY.replace("vendor_a", "vendor_c").replace("rotate the keys", "renew the cert"))
    try:
        proc.start()  # first start beside the file: migrated, backup kept
        await until(lambda: status.read_text().startswith("<!-- statusd mirror"), what="the first-start migration")
        done = await asyncio.to_thread(migrate, proc.root, str(other))
        assert done.returncode == 0, done.stderr + done.stdout
        assert other.with_name("old_status.md.backup").exists()
        await until(lambda: "vendor_c: operational" in status.read_text(), what="the daemon's mirror")
        assert "renew the cert" in status.read_text()
        assert proc.stop() == 0
    finally:
        proc.cleanup()
