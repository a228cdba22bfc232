"""``rm -r .statusd`` under a running daemon: the daemon writes its store back and loses nothing."""

from __future__ import annotations

import shutil
import sqlite3

from daemon_support import until
from inprocess_support import InProcessDaemon


async def test_a_running_daemon_puts_back_a_deleted_store_and_keeps_every_write(daemon: InProcessDaemon) -> None:
    async with daemon.client() as c:
        first = await c.call("create_work_item", item_type="task", title="before")
        shutil.rmtree(daemon.store_path.parent)
        await until(daemon.store_path.exists, within=10, what="the store written back by the idle guard")
        second = await c.call("create_work_item", item_type="task", title="after")
        listed = await c.call("list_work_items")
        mirror = daemon.root / ".project_status.md"
        # The mirror reads the written-back file too, not the vanished one.
        await until(lambda: mirror.exists() and "after" in mirror.read_text(), what="the mirror to show the new write")
    assert {i["id"] for i in listed["items"]} >= {first["id"], second["id"]}
    with sqlite3.connect(daemon.store_path) as conn:
        titles = {r[0] for r in conn.execute("SELECT title FROM work_items")}
    assert {"before", "after"} <= titles
