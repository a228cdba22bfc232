"""Issue 6 item 7, SPEC §4.3 and §2.7: the store is private whatever the umask, and each store has
a stable machine id of its own (two daemons on one host were both recorded as the bare hostname)."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from statusd.models import CreateWorkItemArgs
from statusd.store import Store, WriteContext, schema, workitems


@pytest.fixture(params=[0o000, 0o022, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def create_item(store: Store, title: str) -> dict[str, object]:
    args = CreateWorkItemArgs(item_type="task", title=title)
    return store.write_sync(workitems.create, WriteContext(actor="t"), args)


async def test_store_directory_is_0700_and_its_files_0600(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "project" / ".statusd" / "store.sqlite3"
    async with Store(path) as store:
        create_item(store, "private")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.lock")]
        assert all(f.exists() for f in files), sorted(p.name for p in path.parent.iterdir())
        assert mode(path.parent) == 0o700
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}


async def test_an_existing_open_store_is_made_private(tmp_path: Path) -> None:
    """A store created by an earlier statusd (0755 directory, 0644 files) is tightened on open."""
    path = tmp_path / ".statusd" / "store.sqlite3"
    async with Store(path, machine="m") as store:
        create_item(store, "made before")
    os.chmod(path.parent, 0o755)
    for f in path.parent.iterdir():
        os.chmod(f, 0o644)
    async with Store(path, machine="m") as store:
        assert mode(path.parent) == 0o700
        assert {f.name: oct(mode(f)) for f in path.parent.iterdir()} == {f.name: "0o600" for f in path.parent.iterdir()}
        assert store.reader.execute("SELECT COUNT(*) FROM work_items").fetchone()[0] == 1


async def test_each_store_has_its_own_stable_machine_id(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "s.sqlite3", tmp_path / "b" / "s.sqlite3"
    async with Store(first) as a, Store(second) as b:
        assert a.machine != b.machine
        for s in (a, b):
            host, _, suffix = s.machine.rpartition(":")
            assert host == socket.gethostname()[:40] and len(suffix) == 8, s.machine
        item = create_item(a, "where was I made")
        machine_a = a.machine
        recorded = a.reader.execute("SELECT machine FROM history WHERE entity_id = ?", (item["id"],)).fetchone()
        assert recorded == (machine_a,)
    async with Store(first) as again:
        assert again.machine == machine_a  # kept in the store, not generated per start


async def test_a_store_from_the_previous_release_gets_a_machine_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    with monkeypatch.context() as old_release:
        old_release.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        old_release.setattr(schema, "LATEST_VERSION", 4)
        async with Store(path, machine="old-host") as old:
            create_item(old, "kept")
    async with Store(path) as upgraded:
        assert upgraded.schema_version() == schema.LATEST_VERSION
        assert upgraded.machine.startswith(socket.gethostname()[:40] + ":")
        assert upgraded.reader.execute("SELECT COUNT(*) FROM work_items").fetchone()[0] == 1
        machine = upgraded.machine
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'machine_id'").fetchone() == (machine,)
