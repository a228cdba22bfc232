"""The reusable import engine (statusd.sync.migration) with a toy importer, and prompts_dir."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statusd import models as m
from statusd.store import Store, WriteContext, workitems
from statusd.sync.migrate import migrate_path
from statusd.sync.migration import run_import


class ToyPlan:
    """Import a list of task titles; idempotent by title."""

    def __init__(self, titles: list[str]) -> None:
        self.titles = titles
        self.total = len(titles)

    def apply(self, conn: sqlite3.Connection, ctx: WriteContext, step: Callable[[], None]) -> None:
        for title in self.titles:
            if conn.execute("SELECT 1 FROM work_items WHERE title = ?", (title,)).fetchone() is None:
                workitems.create(conn, ctx, m.CreateWorkItemArgs(item_type="task", title=title))
            step()

    def checks(self, conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        found = sum(
            conn.execute("SELECT 1 FROM work_items WHERE title = ?", (t,)).fetchone() is not None for t in self.titles
        )
        return {"tasks": {"source": len(self.titles), "migrated": found, "match": found == len(self.titles)}}

    def summary(self) -> dict[str, Any]:
        return {"found": len(self.titles)}


def count(store: Store) -> int:
    return int(store.reader.execute("SELECT COUNT(*) FROM work_items").fetchone()[0])


async def test_commit_dry_run_rollback_progress_and_idempotence(store: Store) -> None:
    plan = ToyPlan(["a", "b", "c"])
    seen: list[tuple[int, int]] = []

    dry = await run_import(store, plan, actor="importer", dry_run=True, progress=lambda d, t: seen.append((d, t)))
    assert (dry["success"], dry["rollback_executed"], count(store)) == (True, True, 0)
    assert seen == [(1, 3), (2, 3), (3, 3)]

    failed = await run_import(store, plan, actor="importer", fail="tasks_mismatch")
    assert failed["success"] is False and failed["rollback_executed"] is True
    assert failed["errors"] == ["validation_failed", "tasks"]
    assert failed["reconciliation"]["tasks"]["injected_failure"] is True
    assert count(store) == 0

    done = await run_import(store, plan, actor="importer")
    assert (done["success"], done["data_preservation_percentage"], count(store)) == (True, 100.0, 3)
    via = {r[0] for r in store.reader.execute("SELECT via FROM history")}
    assert "migration" in via

    again = await run_import(store, plan, actor="importer")
    assert again["success"] is True and count(store) == 3


async def test_a_failing_on_commit_rolls_everything_back(store: Store) -> None:
    def boom() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await run_import(store, ToyPlan(["x"]), actor="importer", on_commit=boom)
    assert count(store) == 0


async def test_prompts_dir_adds_session_prompts(store: Store, tmp_path: Path) -> None:
    status = tmp_path / "status.md"
    status.write_text("# Project Status\n")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "kickoff.md").write_text("---\nsession_id: s1\ntoken_budget: 5000\n---\nPlan the sprint.\n")
    (prompts / "broken.md").write_text("---\nsession_id: [unclosed\n---\nText\n")
    result = await migrate_path(store, status, prompts_dir=prompts)
    assert result["success"] is True
    assert result["reconciliation"]["session_prompts"] == {"source": 1, "migrated": 1, "match": True}
    assert any("malformed front matter" in w and "broken" in w for w in result["migration_warnings"])
    row = store.reader.execute(
        "SELECT title, description, metadata FROM work_items WHERE item_type='session'"
    ).fetchone()
    assert row[0] == "kickoff" and row[1] == "Plan the sprint."
    assert '"token_budget":5000' in row[2] and '"schema_version":1' in row[2]


async def test_unusable_paths_are_validation_errors_naming_the_field(store: Store, tmp_path: Path) -> None:
    from statusd.errors import ValidationError

    for bad in ("\x00", str(tmp_path / "missing.md"), str(tmp_path)):
        with pytest.raises(ValidationError) as exc:
            await migrate_path(store, Path(bad))
        assert exc.value.fields[0]["field"] == "path"
    (tmp_path / "status.md").write_bytes(b"\xff\xfe binary")
    with pytest.raises(ValidationError, match="not UTF-8"):
        await migrate_path(store, tmp_path / "status.md")
