"""R8 (SPEC §6): a deleted or corrupted store is moved aside and rebuilt, and the daemon keeps starting.

Each daemon runs on a thread of the test process (``ThreadedDaemon``): the rebuild happens in the
daemon's start-up, the same code either way, and restarting a thread takes milliseconds where a
process takes a second of interpreter and SDK start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sync_support import pg_config, wait_for, wait_online

from daemon_support import until
from inprocess_support import ThreadedDaemon


async def _seed(proc: ThreadedDaemon, titles: list[str]) -> None:
    mirror = proc.root / ".project_status.md"
    async with proc.client("seed") as c:
        for title in titles:
            await c.call("create_work_item", item_type="task", title=title)
        await c.call("create_vendor", name="vendor_r8")
    await until(lambda: mirror.exists() and titles[-1] in mirror.read_text(), what="the mirror file")


async def _titles(proc: ThreadedDaemon) -> list[str]:
    async with proc.client("probe") as c:
        items = await c.call("list_work_items", limit=500)
    return sorted(i["title"] for i in items["items"])


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, timeout=30)


async def test_a_deleted_store_is_rebuilt_from_the_markdown_file(tmp_path: Path) -> None:
    proc = ThreadedDaemon(tmp_path / "project")
    try:
        proc.start()
        await _seed(proc, ["alpha", "beta"])
        assert proc.stop() == 0
        _delete_store(proc.store_path)

        proc.start()
        async with proc.client("probe") as c:
            result = await c.call("list_work_items")
            assert result["data_source"] == "markdown_file"
            assert any(w.startswith("store_rebuilt:") for w in result["warnings"])
            assert (await c.call("query_vendor_status", name="vendor_r8"))["name"] == "vendor_r8"
        assert await _titles(proc) == ["alpha", "beta"]
        # The mirror takes the file over as read: nothing imported twice, new ids written back.
        mirror = proc.root / ".project_status.md"
        await until(lambda: mirror.read_text().count("alpha") == 1 and "^" in mirror.read_text(), what="mirror")
        assert proc.stop() == 0

        proc.start()  # and starts again normally: no crash loop, nothing rebuilt twice
        assert await _titles(proc) == ["alpha", "beta"]
        async with proc.client("probe") as c:
            assert (await c.call("list_work_items"))["data_source"] == "local_store"
        assert proc.stop() == 0
    finally:
        proc.cleanup()


async def _committed_project(proc: ThreadedDaemon) -> None:
    """Two items, the daemon stopped, and its status file committed to a new git repository."""
    proc.start()
    await _seed(proc, ["committed one", "committed two"])
    assert proc.stop() == 0
    _git(proc.root, "init", "-q")
    _git(proc.root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".project_status.md")
    _git(proc.root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "status")


async def test_a_corrupt_store_is_rebuilt_from_a_working_copy_newer_than_git(tmp_path: Path) -> None:
    proc = ThreadedDaemon(tmp_path / "project")
    try:
        await _committed_project(proc)
        mirror = proc.root / ".project_status.md"
        mirror.write_text(mirror.read_text().replace("committed two", "only in the working copy"))
        proc.store_path.write_bytes(b"this is not a database" * 100)

        proc.start()
        async with proc.client("probe") as c:
            result = await c.call("list_work_items")
            # The working copy is newer than the commit: it is the source, so nothing in it is lost.
            assert result["data_source"] == "markdown_file"
            assert any("rebuilt from markdown_file" in w for w in result["warnings"])
        assert await _titles(proc) == ["committed one", "only in the working copy"]
        assert list(proc.store_path.parent.glob("store.sqlite3.corrupt-*")), "the corrupt file was kept aside"
        assert proc.stop() == 0
        assert "only in the working copy" in mirror.read_text()
    finally:
        proc.cleanup()


async def test_a_corrupt_store_is_rebuilt_from_git_when_the_working_copy_is_the_commit(tmp_path: Path) -> None:
    proc = ThreadedDaemon(tmp_path / "project")
    try:
        await _committed_project(proc)
        proc.store_path.write_bytes(b"this is not a database" * 100)

        proc.start()
        async with proc.client("probe") as c:
            result = await c.call("list_work_items")
            assert result["data_source"] == "git_history"
            assert any("rebuilt from git_history" in w for w in result["warnings"])
        assert await _titles(proc) == ["committed one", "committed two"]
        assert proc.stop() == 0
    finally:
        proc.cleanup()


async def test_a_deleted_replicated_store_is_rebuilt_from_postgres(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    proc = ThreadedDaemon(tmp_path / "project", extra_config=pg_config(dsn, schema))
    try:
        proc.start()
        await wait_online(proc)
        await _seed(proc, ["hub one", "hub two"])
        await wait_for(lambda: _outbox_empty(proc.store_path), what="the outbox to drain")
        assert proc.stop() == 0
        _delete_store(proc.store_path)

        proc.start()

        async def rebuilt() -> bool:
            async with proc.client("probe") as c:
                result = await c.call("list_work_items")
            return result["data_source"] == "local_store" and len(result["items"]) == 2

        await wait_for(rebuilt, what="the rebuild from Postgres")
        assert await _titles(proc) == ["hub one", "hub two"]
        mirror = proc.root / ".project_status.md"
        await until(lambda: "hub one" in mirror.read_text(), what="the mirror after the rebuild")
        async with proc.client("probe") as c:
            items = await c.call("list_work_items", limit=500)
        assert len(items["items"]) == 2, "the markdown file was not imported on top of the bootstrap"
        assert proc.stop() == 0
    finally:
        proc.cleanup()


def _delete_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _outbox_empty(path: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    finally:
        conn.close()


async def test_a_hub_rebuild_never_overwrites_a_file_listing_what_the_hub_lacks(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    """Regression: writes that never reached Postgres (store lost before the outbox drained) were still
    in the markdown file, and the mirror's first render after the rebuild from Postgres erased them."""
    dsn, schema = pg_schema
    proc = ThreadedDaemon(tmp_path / "project", extra_config=pg_config(dsn, schema))
    try:
        proc.start()
        await wait_online(proc)
        await _seed(proc, ["hub one"])
        await wait_for(lambda: _outbox_empty(proc.store_path), what="the outbox to drain")
        assert proc.stop() == 0
        mirror = proc.root / ".project_status.md"
        # As the file looked with a write the hub never got: a tagged line for an entity it lacks.
        line = "- [ ] never reached the hub (task, high) ^0badc0de\n\n"
        lost = mirror.read_text().replace("## Deployments", line + "## Deployments")
        mirror.write_text(lost)
        _delete_store(proc.store_path)

        proc.start()

        async def paused() -> dict | None:
            async with proc.client("probe") as c:
                m = (await c.call("sync_status"))["mirror"]
            return m if m["state"] == "paused" and "does not have" in (m["reason"] or "") else None

        state = await until(paused, within=30, what="the mirror to pause after the rebuild")
        assert "lists 1 entry the store rebuilt from Postgres does not have" in state["reason"]
        assert await _titles(proc) == ["hub one"]
        assert mirror.read_text() == lost, "the file holding the lost write was overwritten"
        # What the pause says to do brings the lost write back and the mirror with it.
        async with proc.client("probe") as c:
            assert (await c.call("migrate_legacy_markdown", path=".project_status.md"))["success"] is True
            assert (await c.call("sync_status"))["mirror"]["state"] == "running"
        assert await _titles(proc) == ["hub one", "never reached the hub"]
        assert proc.stop() == 0
    finally:
        proc.cleanup()
