"""A store file deleted or replaced under a running daemon is written back: no acknowledged write is lost.

Without the guard, writes after ``rm .statusd/store.sqlite3`` land in the unlinked inode the daemon
still holds, are acknowledged, and vanish at the next start.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from store_support import create_item, get_item, list_ids

from statusd.store import Store


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def set_aside(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if ".replaced-" in p.name]


def titles_on_disk(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT title FROM work_items")}


async def test_a_write_after_the_file_was_deleted_writes_the_whole_store_back(tmp_path: Path) -> None:
    path = tmp_path / "proj" / ".statusd" / "store.sqlite3"
    async with Store(path, machine="m") as store:
        before = await create_item(store, title="before the rm")
        remove(path)
        after = await create_item(store, title="after the rm")
        assert path.exists()
        assert get_item(store, before["id"])["title"] == "before the rm"  # reads see the restored file
        assert list_ids(store) == {before["id"], after["id"]}
    assert titles_on_disk(path) == {"before the rm", "after the rm"}
    async with Store(path, machine="m") as reopened:
        assert reopened.moved_aside is None
        assert list_ids(reopened) == {before["id"], after["id"]}


async def test_the_idle_guard_restores_a_deleted_directory(tmp_path: Path) -> None:
    path = tmp_path / "proj" / ".statusd" / "store.sqlite3"
    async with Store(path, machine="m") as store:
        item = await create_item(store, title="kept")
        shutil.rmtree(path.parent)
        assert await store.guard_file() is True
        assert await store.guard_file() is False  # once is enough
        assert path.exists() and (path.parent.stat().st_mode & 0o777) == 0o700
        assert (path.stat().st_mode & 0o777) == 0o600
        assert await store.read_off_loop(lambda conn: conn.execute("SELECT COUNT(*) FROM work_items").fetchone()[0])
    assert titles_on_disk(path) == {"kept"}
    assert item["id"]


async def test_a_file_put_in_its_place_is_moved_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with Store(path, machine="m") as store:
        await create_item(store, title="ours")
        remove(path)
        path.write_bytes(b"someone else's bytes")
        await create_item(store, title="ours too")
    aside = set_aside(tmp_path)
    assert [p.read_bytes() for p in aside] == [b"someone else's bytes"]
    assert titles_on_disk(path) == {"ours", "ours too"}
