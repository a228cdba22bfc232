"""R9: a store written by release v0.1.0 opens with this code, migrated in place, nothing lost.

The fixture (tests/fixtures/v0_1_0/store.sqlite3) was written by v0.1.0 itself: every entity,
hierarchy, dependencies, a claim, soft deletes, an archived item, history, a pending outbox, an open
and a resolved conflict. See make_fixtures.py beside it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from statusd.daemon.service import Service
from statusd.errors import StoreTooNewError
from statusd.store import Store, schema
from upgrade_support import columns, copy_v010_store, rows_in_columns, table_rows, v010_counts


def test_the_fixture_is_what_v010_wrote(tmp_path: Path) -> None:
    path = copy_v010_store(tmp_path)
    counts = v010_counts()
    assert counts["store_schema_version"] == 4
    rows = table_rows(path)
    assert {t: len(r) for t, r in rows.items()} == counts["store"]
    for table in ("work_items", "dependencies", "vendors", "deployments", "enhancements", "configuration",
                  "history", "outbox", "conflicts"):  # fmt: skip
        assert rows[table], f"the fixture has no {table} rows: regenerate it"


async def test_opening_migrates_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    path = copy_v010_store(tmp_path)
    old_columns = columns(path)
    old_rows = {t: rows_in_columns(path, t, cols) for t, cols in old_columns.items()}
    async with Store(path, machine="fixture-here", replicated=True, project="fixture") as store:
        assert store.schema_version() == schema.LATEST_VERSION
    new_columns = columns(path)
    for table, cols in old_columns.items():
        assert table in new_columns, f"migration dropped table {table}"
        assert set(cols) <= set(new_columns[table]), f"migration dropped columns of {table}"
        after = rows_in_columns(path, table, cols)
        if table == "schema_migrations":
            assert after[: len(old_rows[table])] == old_rows[table]
            assert [r[0] for r in after] == list(range(1, schema.LATEST_VERSION + 1))
        elif table in ("meta", "configuration", "sqlite_sequence"):
            # Bookkeeping a newer release may add to (e.g. a per-store machine id): nothing removed.
            assert set(old_rows[table]) <= set(after), f"rows of {table} lost on upgrade"
        else:
            assert after == old_rows[table], f"rows of {table} changed on upgrade"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


async def test_the_upgraded_store_serves_every_entity(tmp_path: Path) -> None:
    path = copy_v010_store(tmp_path)
    counts = v010_counts()["store"]
    async with Store(path, machine="fixture-here", replicated=True, project="fixture") as store:
        svc = Service(store)

        async def ok(name: str, args: dict[str, object]) -> dict[str, object]:
            out = await svc.call(name, args)
            assert not out.is_error, out.payload
            return out.payload

        full = await ok("generate_full_status", {})
        assert full, "the full status report answers"
        live = await ok("list_work_items", {"limit": 500, "include_deleted": True})
        archived = await ok("query_archived_work_items", {})
        assert len(live["items"]) + len(archived["items"]) == counts["work_items"]  # type: ignore[arg-type]
        assert len(archived["items"]) == 1  # type: ignore[arg-type]
        vendors = await ok("query_vendor_status", {})
        assert {v["name"] for v in vendors["vendors"]} == {"Acme", "Globex"}  # type: ignore[index]
        assert len((await ok("list_deployments", {}))["deployments"]) == 1  # type: ignore[arg-type]
        assert len((await ok("list_enhancements", {}))["enhancements"]) == 1  # type: ignore[arg-type]
        conflicts = await ok("list_conflicts", {"include_resolved": True})
        assert len(conflicts["conflicts"]) == 2  # type: ignore[arg-type]
        assert svc.open_conflicts() == 1
        summary = svc.sync_summary()
        assert summary["pending_outbox"] == counts["outbox"]
        task = next(i for i in live["items"] if str(i["title"]).startswith("Task 0"))  # type: ignore[union-attr, index]
        history = await ok("query_history", {"id": task["id"]})
        assert len(history["versions"]) >= 2  # type: ignore[arg-type]
        # And it still takes writes.
        await ok("create_work_item", {"item_type": "task", "title": "after the upgrade"})


def test_a_newer_than_known_store_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = copy_v010_store(tmp_path / ".statusd")
    newer = schema.LATEST_VERSION + 1
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from_the_future', '2030-01-01')", (newer,))
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreTooNewError, match=f"store schema version {newer} is newer than this statusd"):
        Store(path).open()

    config = tmp_path / "statusd.toml"
    config.write_text(f'project = "fixture"\n[socket]\npath = "{tmp_path}/s.sock"\n')
    run = subprocess.run(
        [sys.executable, "-m", "statusd.cli", "run", "--config", str(config)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert run.returncode == 78, run.stderr  # EX_CONFIG: systemd does not restart it (RestartPreventExitStatus)
    assert f"store schema version {newer} is newer than this statusd understands" in run.stderr
    assert "upgrade statusd" in run.stderr
    assert path.read_bytes() == before, "the newer file is left exactly as it was"
