"""``statusd import`` / ``statusd export`` as real subprocesses, through a daemon and without one."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from importer_support import BACKLOG, BEADS, TASKMASTER_TAGGED

from daemon_support import DaemonProcess
from statusd.client import ValidationError


async def statusd(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "statusd.cli", *args, "--config", str(config)]
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=120, cwd="/", env=env)


def item_count(store_path: Path) -> int:
    with sqlite3.connect(store_path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM work_items").fetchone()[0])


async def test_import_through_the_daemon_dry_run_then_real_then_again(daemon: DaemonProcess) -> None:
    dry = await statusd(daemon.config_path, "import", "beads", str(BEADS), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would import beads" in dry.stdout and "created 11, updated 0, unchanged 0, skipped 4" in dry.stdout
    assert "(15 records): created 11" in dry.stdout  # a stranger can check the sum without --json
    assert "skipped issues.jsonl:9: tombstone" in dry.stdout and "nothing was written" in dry.stdout
    async with daemon.client() as c:
        assert (await c.call("list_work_items"))["total_count"] == 0
    real = await statusd(daemon.config_path, "import", "beads", str(BEADS))
    assert real.returncode == 0, real.stderr
    assert "Imported beads" in real.stdout and "created 11" in real.stdout
    assert "warning: issues.jsonl:12: subtask-of edge app-o3p -> app-m2n skipped" in real.stdout
    again = await statusd(daemon.config_path, "import", "beads", str(BEADS), "--json")
    report = json.loads(again.stdout)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 11)
    assert report["sync"] == "local_only" and report["wrote_to_store"] is True
    async with daemon.client() as c:
        found = await c.call("list_work_items", text="app-a1b.1.1")
        assert [i["title"] for i in found["items"]] == ["Totals rounding"]


async def test_export_writes_beads_jsonl_of_every_live_item(daemon: DaemonProcess, tmp_path: Path) -> None:
    assert (await statusd(daemon.config_path, "import", "taskmaster", str(TASKMASTER_TAGGED))).returncode == 0
    out = tmp_path / "export.jsonl"
    done = await statusd(daemon.config_path, "export", "beads-jsonl", str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 14 and {r["title"] for r in records} >= {"Task Master: master", "Logout endpoint"}
    to_stdout = await statusd(daemon.config_path, "export", "beads-jsonl")
    assert to_stdout.stdout == out.read_text()
    wrong = await statusd(daemon.config_path, "export", "csv")
    assert wrong.returncode == 2 and "beads-jsonl" in wrong.stderr


async def test_a_failure_injected_in_the_daemon_rolls_back_and_exits_non_zero(tmp_path: Path) -> None:
    proc = DaemonProcess(tmp_path / "p", env={"STATUSD_IMPORT_FAIL_AFTER": "4"}).start()
    try:
        failed = await statusd(proc.config_path, "import", "backlog", str(BACKLOG))
        assert failed.returncode == 1 and "failure injected after 4 items" in failed.stderr
        async with proc.client() as c:
            assert (await c.call("list_work_items", include_deleted=True))["total_count"] == 0
            for path in (str(tmp_path / "nowhere"), "bad\x00path", str(tmp_path)):
                with pytest.raises(ValidationError) as bad:
                    await c.call("import_tasks", source="beads", path=path)
                assert bad.value.details["fields"][0]["field"] == "path"
    finally:
        assert proc.stop() == 0
        proc.cleanup()


async def test_without_a_daemon_the_cli_imports_into_the_store_itself(tmp_path: Path) -> None:
    config = tmp_path / "statusd.toml"
    config.write_text(f'project = "offline"\n\n[socket]\npath = "{tmp_path / "none.sock"}"\n')
    store = tmp_path / ".statusd" / "store.sqlite3"
    failed = await statusd(config, "import", "backlog", str(BACKLOG), env={"STATUSD_IMPORT_FAIL_AFTER": "2"})
    assert failed.returncode == 1 and "nothing was written" in failed.stderr
    assert item_count(store) == 0
    done = await statusd(config, "import", "backlog", str(BACKLOG / "backlog"))
    assert done.returncode == 0, done.stderr
    assert "created 10, updated 0, unchanged 0, skipped 3" in done.stdout
    assert item_count(store) == 10


async def test_import_tasks_sends_progress_notifications_to_a_caller_that_asks(daemon: DaemonProcess) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with daemon.client() as c:
        args = {"source": "taskmaster", "path": str(TASKMASTER_TAGGED)}
        result = await c.session.call_tool("import_tasks", args, progress_callback=on_progress)
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["created"] == 14
    assert seen and seen[-1] == (23, 23)  # 14 items + 9 planned edges, all reported before the answer
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
