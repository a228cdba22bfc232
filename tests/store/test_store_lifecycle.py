"""Store lifecycle (SPEC §3, §6): pragmas, migrations, one daemon per file, corrupt and newer files."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from store_support import create_item, ctx, get_item

from statusd.errors import StoreLockedError, StoreTooNewError
from statusd.store import Store, WriteContext, schema
from statusd.store import entities as ent


def pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def on_writer(store: Store, name: str) -> object:
    return store.write_sync(lambda conn, _ctx: pragma(conn, name), ctx())


async def test_wal_full_sync_and_foreign_keys_on_both_connections(store: Store) -> None:
    for get in (lambda n: pragma(store.reader, n), lambda n: on_writer(store, n)):
        assert get("journal_mode") == "wal"
        assert get("synchronous") == 2  # FULL
        assert get("foreign_keys") == 1


async def test_synchronous_normal_can_be_chosen(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", synchronous="normal") as s:
        assert on_writer(s, "synchronous") == 1


async def test_reads_never_write(store: Store) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.read(lambda conn: conn.execute("DELETE FROM work_items"))


async def test_using_a_closed_store_is_an_error(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite3")
    with pytest.raises(RuntimeError, match="not open"):
        s.read(lambda conn: None)
    with pytest.raises(RuntimeError, match="not open"):
        await s.write(lambda conn, c: None, ctx())


async def test_migrations_are_recorded_and_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    expected = [(i, name) for i, (name, _) in enumerate(schema.MIGRATIONS, start=1)]
    async with Store(path) as s:
        recorded = s.reader.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
        assert [(v, n) for v, n, _ in recorded] == expected
        assert s.schema_version() == schema.LATEST_VERSION == len(schema.MIGRATIONS)
        item = await create_item(s, title="survives")
    async with Store(path) as s:
        again = s.reader.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
        assert again == recorded
        assert get_item(s, item["id"])["title"] == "survives"
        assert s.reader.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 2  # configuration + item
        assert s.moved_aside is None


async def test_a_newer_daemon_upgrades_an_older_file_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.sqlite3"
    async with Store(path) as s:
        item = await create_item(s, title="kept")

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE work_items ADD COLUMN estimate INTEGER")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, ("9999_estimate", add_column)])
    monkeypatch.setattr(schema, "LATEST_VERSION", len(schema.MIGRATIONS))
    async with Store(path) as s:
        assert s.schema_version() == schema.LATEST_VERSION
        assert s.reader.execute("SELECT name FROM schema_migrations ORDER BY version DESC LIMIT 1").fetchone() == (
            "9999_estimate",
        )
        assert s.reader.execute("SELECT title, estimate FROM work_items WHERE id = ?", (item["id"],)).fetchone() == (
            "kept",
            None,
        )


async def test_a_failing_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.sqlite3"
    async with Store(path) as s:
        await create_item(s)
    original = list(schema.MIGRATIONS)

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("migration bug")

    monkeypatch.setattr(schema, "MIGRATIONS", [*original, ("9999_broken", half_done)])
    monkeypatch.setattr(schema, "LATEST_VERSION", len(original) + 1)
    with pytest.raises(sqlite3.OperationalError, match="migration bug"):
        Store(path).open()
    monkeypatch.setattr(schema, "MIGRATIONS", original)
    monkeypatch.setattr(schema, "LATEST_VERSION", len(original))
    async with Store(path) as s:  # the lock was released and the file is intact
        assert s.moved_aside is None
        assert s.schema_version() == len(original)
        assert s.reader.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchone() is None
        assert s.reader.execute("SELECT COUNT(*) FROM work_items").fetchone() == (1,)


async def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with Store(path) as first:
        second = Store(path)
        with pytest.raises(StoreLockedError) as exc:
            second.open()
        assert str(path) in exc.value.message
        assert f"pid {os.getpid()}" in exc.value.message
        assert "already uses the store" in exc.value.message
        await create_item(first)  # the first one is unaffected
    async with Store(path) as again:  # released on close
        assert again.reader.execute("SELECT COUNT(*) FROM work_items").fetchone() == (1,)


async def test_a_garbage_file_is_moved_aside_and_an_empty_store_created(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    garbage = os.urandom(64) + b"this is not a database" * 500
    path.write_bytes(garbage)
    async with Store(path) as s:
        assert s.moved_aside is not None
        assert s.moved_aside.parent == path.parent
        assert s.moved_aside.name.startswith("s.sqlite3.corrupt-")
        assert s.moved_aside.read_bytes() == garbage, "moved aside, never deleted or rewritten"
        assert s.reader.execute("SELECT COUNT(*) FROM work_items").fetchone() == (0,)
        assert s.reader.execute("SELECT COUNT(*) FROM configuration").fetchone() == (1,)
        item = await create_item(s)
    async with Store(path) as s:
        assert s.moved_aside is None
        assert get_item(s, item["id"])["version"] == 1


async def test_a_damaged_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with Store(path) as s:
        for i in range(40):
            await create_item(s, title=f"item {i}", description="x" * 500)
    size = path.stat().st_size
    page = 4096
    assert size > 4 * page
    with path.open("r+b") as f:  # trash every page after the schema page
        f.seek(page)
        f.write(b"\xa5" * (size - page))
    damaged = path.read_bytes()
    async with Store(path) as s:
        assert s.moved_aside is not None
        assert s.moved_aside.read_bytes() == damaged
        assert s.reader.execute("SELECT COUNT(*) FROM work_items").fetchone() == (0,)


async def test_a_file_from_a_newer_schema_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with Store(path) as s:
        await create_item(s)
    newer = schema.LATEST_VERSION + 1
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from_the_future', '2030-01-01')", (newer,))
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreTooNewError) as exc:
        Store(path).open()
    message = str(exc.value)
    assert f"schema version {newer}" in message
    assert "newer than this statusd understands" in message
    assert "upgrade statusd" in message
    assert path.read_bytes() == before, "the newer file is left exactly as it was"
    assert [name for name in os.listdir(tmp_path) if "corrupt" in name] == []
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (newer,))
    conn.close()
    async with Store(path) as s:  # the refusal released the lock
        assert s.reader.execute("SELECT COUNT(*) FROM work_items").fetchone() == (1,)


async def test_the_configuration_is_created_once_at_open(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    for _ in range(3):
        async with Store(path) as s:
            assert s.reader.execute("SELECT COUNT(*), MAX(version) FROM configuration").fetchone() == (1, 1)
            assert s.reader.execute("SELECT COUNT(*) FROM history WHERE entity = 'configuration'").fetchone() == (1,)


async def test_listeners_hear_committed_writes_only(store: Store) -> None:
    heard: list[set[str]] = []
    store.add_listener(lambda c: heard.append(set(c.changed_entities)))
    await create_item(store)

    def fail(conn: sqlite3.Connection, c: WriteContext) -> None:
        ent.insert(conn, c, ent.VENDOR, {"name": "x", "status": "broken", "metadata": {}})
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await store.write(fail, ctx())
    await store.write(lambda conn, c: None, ctx())
    assert heard == [{"work_item"}]


async def test_a_second_corruption_never_overwrites_an_earlier_aside_file(tmp_path: Path) -> None:
    """Regression: the aside name had one-second resolution, so a rename could replace an earlier copy."""
    path = tmp_path / "s.sqlite3"
    now = time.time()
    earlier = {}
    for offset in range(5):  # every name the next few seconds could produce
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now + offset))
        aside = tmp_path / f"s.sqlite3.corrupt-{stamp}"
        aside.write_bytes(b"earlier copy %d" % offset)
        earlier[aside] = aside.read_bytes()
    path.write_bytes(b"garbage" * 1000)
    async with Store(path) as s:
        assert s.moved_aside is not None
        assert s.moved_aside not in earlier
        assert s.moved_aside.read_bytes() == b"garbage" * 1000
    assert {p: p.read_bytes() for p in earlier} == earlier
