"""An import is a write like any other: it replicates through Postgres to another daemon."""

from __future__ import annotations

from pathlib import Path

from importer_support import TASKMASTER_TAGGED
from sync_support import Fleet, pg_config, wait_converged, wait_for, wait_online


async def test_imported_items_and_edges_reach_another_daemon(fleet: Fleet, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    a = fleet.start(pg_config(dsn, schema), name="a")
    b = fleet.start(pg_config(dsn, schema), name="b")
    await wait_online(a)
    await wait_online(b)
    async with a.client() as ca:
        report = await ca.call("import_tasks", source="taskmaster", path=str(TASKMASTER_TAGGED))
    assert report["created"] == 14 and report["sync"] in ("confirmed", "queued")

    async def on_b() -> dict | None:
        async with b.client() as cb:
            found = await cb.call("list_work_items", text="2.3")
            return found if found["total_count"] else None

    found = await wait_for(on_b, what="an imported item on daemon b")
    assert [i["title"] for i in found["items"]] == ["Login endpoint"]
    await wait_converged([Path(a.store_path), Path(b.store_path)], dsn, schema)
    async with b.client() as cb:
        item = await cb.call("query_work_item", id=found["items"][0]["id"])
    waits_for = {d["related_item"]["title"] for d in item["dependencies"] if d["direction"] == "outgoing"}
    assert waits_for == {"Session store", "Password hashing"}
    assert [p["title"] for p in item["parent_chain"]] == ["Task Master: master", "Auth service"]
