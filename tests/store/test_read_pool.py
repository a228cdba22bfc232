"""Long reads run on reader threads with read-only connections; point reads on the loop never wait for them (P17)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest
from store_support import create_item, list_ids

from statusd.store import Store
from statusd.store import entities as ent


async def test_a_long_read_does_not_hold_up_point_reads_on_the_loop(store: Store) -> None:
    item = await create_item(store, title="visible")
    release = threading.Event()
    started = threading.Event()

    def long_report(conn: sqlite3.Connection) -> tuple[str, int]:
        started.set()
        assert release.wait(30), "the test never released the long read"
        count = conn.execute("SELECT COUNT(*) FROM work_items").fetchone()[0]
        return threading.current_thread().name, count, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    slow = asyncio.create_task(store.read_off_loop(long_report))
    await asyncio.to_thread(started.wait, 30)
    # The long read is in progress on its thread; a point read on the loop answers meanwhile.
    assert store.read(ent.get, ent.WORK_ITEM, item["id"])["title"] == "visible"
    assert not slow.done()
    release.set()
    thread, count, nice = await slow
    assert thread.startswith("statusd-reader") and count == 1
    assert nice > os.getpriority(os.PRIO_PROCESS, 0), "reader threads yield the CPU to the loop thread"


async def test_reader_threads_see_committed_writes_and_cannot_write(store: Store) -> None:
    def titles(conn: sqlite3.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT title FROM work_items")}

    assert await store.read_off_loop(titles) == set()
    await create_item(store, title="first")
    assert await store.read_off_loop(titles) == {"first"}
    assert list_ids(store)  # the loop reader agrees

    def write(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM work_items")

    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        await store.read_off_loop(write)
    assert await store.read_off_loop(titles) == {"first"}


async def test_closing_the_store_closes_the_reader_connections(tmp_path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.open()
    await asyncio.gather(*(store.read_off_loop(lambda c: c.execute("SELECT 1").fetchone()) for _ in range(8)))
    conns = list(store._pool_conns)
    assert 1 <= len(conns) <= 2
    store.close()
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="not open"):
        await store.read_off_loop(lambda c: None)
