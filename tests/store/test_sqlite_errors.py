"""SQLite failures of the store itself become ``unavailable`` with a reason (statusd.store.sqlite_errors).

The full disk is a real one: a 2 MiB tmpfs filled to the last byte (root only), plus SQLite's own
``max_page_count`` limit, which raises the same SQLITE_FULL anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from statusd.daemon.service import Service
from statusd.errors import UnavailableError
from statusd.store import Store
from statusd.store.sqlite_errors import mapped, translate


@contextlib.contextmanager
def tiny_filesystem(size: str = "2m") -> Iterator[Path]:
    """A real, small tmpfs mounted for the test (needs root and mount rights)."""
    mount_point = Path(tempfile.mkdtemp(prefix="sd-full-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True
    )
    if done.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the max_page_count test covers it")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
        mount_point.rmdir()


def fill(directory: Path) -> Path:
    """Write a file until the file system refuses another byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                if len(chunk) == 1:
                    return filler
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


async def create(service: Service, title: str, description: str = "") -> dict:
    args = {"item_type": "task", "title": title, "description": description}
    outcome = await service.call("create_work_item", args)
    return {"is_error": outcome.is_error, **outcome.payload}


async def test_full_disk_is_unavailable_reads_go_on_and_writes_resume() -> None:
    with tiny_filesystem() as mount:
        async with Store(mount / "store.sqlite3", machine="m") as store:
            service = Service(store)
            kept = await create(service, "written before the disk filled")
            assert kept["is_error"] is False
            filler = fill(mount)

            # Enough rows to need new pages in the WAL, which the disk cannot hold.
            refused = None
            for n in range(200):
                answer = await create(service, f"x{n}", "y" * 16_000)
                if answer["is_error"]:
                    refused = answer
                    break
            assert refused is not None, "the full disk never refused a write"
            error = refused["error"]
            assert error["code"] == "unavailable"
            assert "disk" in error["message"] and "full" in error["message"]
            assert error["details"]["reason"] == "disk_full"

            read = await service.call("query_work_item", {"id": kept["id"]})
            assert read.is_error is False and read.payload["title"] == "written before the disk filled"

            filler.unlink()
            again = await create(service, "written after space returned")
            assert again["is_error"] is False
            listed = await service.call("list_work_items", {"limit": 500})
            titles = {i["title"] for i in listed.payload["items"]}
            assert {"written before the disk filled", "written after space returned"} <= titles


async def test_sqlite_full_from_max_page_count_is_unavailable(store: Store) -> None:
    service = Service(store)
    kept = await create(service, "before the limit")
    assert store._writer is not None
    pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
    store._writer.execute(f"PRAGMA max_page_count = {pages}")
    refused = None
    for n in range(50):
        answer = await create(service, f"x{n}", "y" * 16_000)
        if answer["is_error"]:
            refused = answer
            break
    assert refused is not None
    assert refused["error"]["code"] == "unavailable"
    assert refused["error"]["details"] == {"reason": "disk_full", "sqlite_error": "SQLITE_FULL"}
    assert (await service.call("query_work_item", {"id": kept["id"]})).is_error is False
    store._writer.execute("PRAGMA max_page_count = 1073741823")
    assert (await create(service, "after the limit"))["is_error"] is False


async def test_a_locked_store_is_unavailable(store: Store) -> None:
    service = Service(store)
    assert store._writer is not None
    store._writer.execute("PRAGMA busy_timeout = 50")  # the daemon waits 30 s; the test need not
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        answer = await create(service, "blocked")
        assert answer["is_error"] is True
        assert answer["error"]["code"] == "unavailable"
        assert answer["error"]["details"]["reason"] == "locked"
        other.execute("ROLLBACK")
        assert (await create(service, "unblocked"))["is_error"] is False
    finally:
        other.close()


def sqlite_error(sql: str, conn: sqlite3.Connection) -> sqlite3.Error:
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"{sql!r} did not fail")


def test_readonly_and_corrupt_files_have_their_reasons(tmp_path: Path) -> None:
    db = tmp_path / "ro.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as ro:
        readonly = translate(sqlite_error("INSERT INTO t VALUES (1)", ro), db)
        assert isinstance(readonly, UnavailableError)
        assert readonly.details["reason"] == "readonly" and str(db) in readonly.message
        # On the store's query-only read connection the same code is a read that tried to write.
        assert translate(sqlite_error("INSERT INTO t VALUES (1)", ro), db, reading=True) is None

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 200)
    with contextlib.closing(sqlite3.connect(garbage)) as bad:
        corrupt = translate(sqlite_error("SELECT * FROM sqlite_master", bad), garbage)
    assert isinstance(corrupt, UnavailableError) and corrupt.details["reason"] == "corrupt"


def test_errors_of_the_caller_or_the_code_pass_through(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "t.sqlite3")) as conn:
        conn.execute("CREATE TABLE t (x UNIQUE)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert translate(sqlite_error("INSERT INTO t VALUES (1)", conn), "t") is None  # constraint
        assert translate(sqlite_error("SELEC nonsense", conn), "t") is None  # syntax
        with pytest.raises(sqlite3.IntegrityError), mapped("t"):
            conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.OperationalError), mapped("t"):
            raise sqlite3.OperationalError("database or disk is full")  # no result code: not guessed from text
