"""kill -9 during an import: the next start rolls the run back before serving (one process test)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from test_import_chunks import beads_source

from daemon_support import DaemonProcess, until


def store_state(path: Path) -> tuple[int, list[str]]:
    """(items imported from beads, states of the import runs) read from the file, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        n = conn.execute("SELECT COUNT(*) FROM work_items WHERE json_extract(metadata, '$.source') = 'beads'")
        runs = [r[0] for r in conn.execute("SELECT state FROM import_runs ORDER BY started_at")]
        return int(n.fetchone()[0]), runs
    finally:
        conn.close()


async def test_a_daemon_killed_mid_import_rolls_the_run_back_at_the_next_start(tmp_path: Path) -> None:
    source = beads_source(tmp_path / "src", 4000)
    proc = DaemonProcess(tmp_path / "p").start()
    try:
        async with proc.client() as c:
            kept = await c.call("create_work_item", title="made before the import", item_type="task")
            importing = asyncio.ensure_future(c.call("import_tasks", source="beads", path=str(source)))
            await until(lambda: store_state(proc.store_path)[0] >= 200, within=60, what="chunks to commit")
            assert store_state(proc.store_path)[1] == ["running"] and not importing.done()
            proc.kill()
            with contextlib.suppress(Exception):
                await importing
        proc.start()
        assert store_state(proc.store_path) == (0, ["rolled_back"])
        async with proc.client() as c:
            listed = await c.call("list_work_items", include_deleted=True)
            assert [i["id"] for i in listed["items"]] == [kept["id"]]
            report = await c.call("import_tasks", source="beads", path=str(source))
            assert report["created"] == 4000
    finally:
        assert proc.stop() == 0
        proc.cleanup()
