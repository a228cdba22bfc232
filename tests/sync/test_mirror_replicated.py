"""The mirror in replicated mode: a change pulled from another machine reaches this machine's file,
and a human edit on one machine reaches the other machine's file through Postgres."""

from __future__ import annotations

from sync_support import Fleet, pg_config, wait_for, wait_online

from daemon_support import until


async def test_pulled_changes_and_human_edits_travel_between_machines(fleet: Fleet, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    a, b = fleet.start(pg_config(dsn, schema)), fleet.start(pg_config(dsn, schema))
    await wait_online(a)
    await wait_online(b)
    file_a, file_b = a.root / ".project_status.md", b.root / ".project_status.md"

    async with a.client("agent-a") as c:
        item = await c.call("create_work_item", item_type="task", title="Made on machine A")
    await until(lambda: file_b.exists() and "Made on machine A" in file_b.read_text(), within=20, what="B's file")

    # A human edits B's file; the edit travels to A's store and A's file.
    text = file_b.read_text()
    sid = item["id"][:8]
    tmp = file_b.with_name("edit.tmp")
    tmp.write_text(
        text.replace(f"- [ ] Made on machine A (task, medium) ^{sid}", f"- [ ] Edited on B (task, high) ^{sid}")
    )
    tmp.replace(file_b)
    await until(lambda: "- [ ] Edited on B (task, high)" in file_a.read_text(), within=20, what="A's file")

    async def on_a() -> dict:
        async with a.client("probe") as c:
            row = await c.call("query_work_item", id=item["id"])
        return row if row["title"] == "Edited on B" else {}

    row = await wait_for(on_a, what="the edit in A's store")
    assert (row["status"], row["priority"]) == ("active", "high")
    async with b.client("probe") as c:
        history = await c.call("query_history", id=item["id"])
    assert history["versions"][0]["via"] == "markdown"
