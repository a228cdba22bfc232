"""The mirror inside a running daemon: a bad save is reported in sync_status, results, `statusd status` and the log."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from mcp_support import statusd_cmd, until

from daemon_support import running_daemon


async def test_a_bad_save_is_reported_everywhere_and_never_overwritten(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "project") as daemon:
        path = daemon.root / ".project_status.md"
        async with daemon.client("claude-code") as c:
            item = await c.call("create_work_item", item_type="task", title="Edited by hand")
            await until(lambda: path.exists() and "Edited by hand" in path.read_text(), what="the mirror file")
            text = path.read_text()
            line_no = text.split("\n").index(f"- [ ] Edited by hand (task, medium) ^{item['id'][:8]}") + 1
            bad = text.replace("Edited by hand (task, medium)", "Edited by hand (task, soonish)")
            tmp = path.with_name("save.tmp")
            tmp.write_text(bad)
            tmp.replace(path)

            async def paused() -> dict | None:
                mirror = (await c.call("sync_status"))["mirror"]
                return mirror if mirror["state"] == "paused" else None

            mirror = await until(paused, what="the mirror to pause")
            assert mirror["error"]["line"] == line_no
            assert "soonish" in mirror["error"]["reason"]

            # Tool writes go on; every result says the mirror is paused, and the file stays the human's.
            result = await c.call("create_work_item", item_type="task", title="While paused")
            assert result["wrote_to_markdown"] is False
            assert any(w.startswith("mirror_paused:") and f"line {line_no}" in w for w in result["warnings"])
            assert path.read_text() == bad

            cli = await asyncio.to_thread(
                subprocess.run,
                statusd_cmd("status", "--config", str(daemon.config_path)),
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "COLUMNS": "1000"},  # one line per line: rich wraps at the terminal width
            )
            assert cli.returncode == 0, cli.stderr
            assert f"Mirror: paused ({path}): " in cli.stdout and f"line {line_no}: " in cli.stdout

            tmp.write_text(bad.replace("(task, soonish)", "(task, high)"))
            tmp.replace(path)
            await until(lambda: "While paused" in path.read_text(), what="the mirror to resume and catch up")
            assert (await c.call("query_work_item", id=item["id"]))["priority"] == "high"
        assert f"line {line_no}" in daemon.log()

