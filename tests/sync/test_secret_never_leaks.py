"""R7, secret part: the Postgres password appears in no log line, error, status or CLI output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from daemon_support import DaemonProcess

SECRET = "s3cr3t-Pr0be-pw"


def _cli(proc: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statusd.cli", *args, "--config", str(proc.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=proc.root,
    )


async def test_password_in_dsn_never_reaches_logs_status_or_errors(tmp_path: Path) -> None:
    # Port 1 refuses connections, so the daemon logs and reports connection errors repeatedly.
    extra = f'\n[postgres]\ndsn = "postgresql://statusd:{SECRET}@127.0.0.1:1/hub"\nschema = "leakprobe"\n'
    proc = DaemonProcess(tmp_path / "project", extra_config=extra).start()
    try:
        async with proc.client("probe") as c:
            write = await c.call("create_work_item", item_type="task", title="offline write")
            assert write["sync"] == "queued"
            assert any(w.startswith("database_unavailable") for w in write["warnings"])
            deadline = time.monotonic() + 10
            status = await c.call("sync_status")
            while status["postgres"]["last_error"] is None and time.monotonic() < deadline:
                status = await c.call("sync_status")
            assert status["postgres"]["last_error"], "the daemon should report why Postgres is unreachable"
            outputs = [json.dumps(write), json.dumps(status)]
        for args in (("status", "--json"), ("sync",), ("sync", "--json")):
            result = _cli(proc, *args)
            assert result.returncode == 0, result.stderr
            outputs += [result.stdout, result.stderr]
        assert proc.stop() == 0
        outputs.append(proc.log())
        for text in outputs:
            assert SECRET not in text
        assert "Connect call failed" in proc.log() or "refused" in proc.log().lower()
    finally:
        proc.cleanup()
