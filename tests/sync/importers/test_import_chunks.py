"""An import commits in chunks: others write between them, nothing builds on it, and it stays all or nothing.

Real SQLite files; the import runs in-process while other writers use the same store. Assertions
are about overlap and ordering (a write returns while the import is still running), never about
wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from importer_support import BEADS, get_item, update_item

from beads_support import beads_source
from statusd import models as m
from statusd.errors import StatusdError
from statusd.store import Store, WriteContext, dependencies, import_runs, outbox, workitems
from statusd.sync.importers import apply, read_plan, runner

TABLES = ("work_items", "dependencies", "history", "outbox", "conflicts")


def counts(store: Store) -> dict[str, int]:
    return {t: store.reader.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def imported_ids(store: Store) -> list[str]:
    sql = "SELECT id FROM work_items WHERE json_extract(metadata, '$.source') = 'beads' ORDER BY created_at"
    return [r[0] for r in store.reader.execute(sql)]


async def create(store: Store, title: str, **fields: Any) -> dict[str, Any]:
    args = m.parse_args(m.CreateWorkItemArgs, {"title": title, "item_type": "task", **fields})
    return await store.write(workitems.create, WriteContext(actor="other"), args)


def start_import(store: Store, path: Path, **options: Any) -> asyncio.Task[dict[str, Any]]:
    plan = read_plan("beads", path)
    return asyncio.create_task(runner.apply_plan(store, WriteContext(actor="importer"), plan, apply.Options(**options)))


async def running(store: Store, task: asyncio.Task[Any], at_least: int = 1) -> None:
    """Wait until the run has committed ``at_least`` items and is still going."""
    for _ in range(3000):
        if store.read(import_runs.active) and len(imported_ids(store)) >= at_least:
            return
        assert not task.done(), task
        await asyncio.sleep(0.002)
    raise AssertionError("the import never got going")


async def test_other_writers_are_served_between_chunks(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1") as store:
        mine = await create(store, "outside the import")
        task = start_import(store, beads_source(tmp_path / "src", 3000))
        await running(store, task)
        for n in range(5):
            await create(store, f"written during the import {n}")
            mine = await update_item(store, mine["id"], title=f"updated during the import {n}")
            assert not task.done(), "another client's write waited for the whole import"
        assert store.read(import_runs.active), "the writes above were served while the run was running"
        report = await task
        assert report["created"] == 3000 and report["dependencies"]["created"] == 150 * 18
        assert get_item(store, mine["id"])["title"] == "updated during the import 4"


async def test_a_write_on_what_a_running_import_holds_is_refused_with_a_structured_error(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1") as store:
        outsider = await create(store, "outside the import")
        task = start_import(store, beads_source(tmp_path / "src", 3000))
        await running(store, task, at_least=2)
        held, other = imported_ids(store)[:2]
        attempts = {
            "update": update_item(store, held, title="mine now"),
            "child": create(store, "a child", parent_id=held),
            "edge": store.write(
                dependencies.add, WriteContext(actor="other"),
                m.parse_args(m.DependencyArgs, {"work_item_id": outsider["id"], "depends_on_id": held}),
            ),
            "move": update_item(store, outsider["id"], parent_id=other),
        }  # fmt: skip
        for what, attempt in attempts.items():
            with pytest.raises(StatusdError) as caught:
                await attempt
            err = caught.value
            assert err.code == "unavailable", what
            assert err.details["reason"] == "import_in_progress", what
            assert err.details["import"]["source"] == "beads" and "retry after it" in err.message, what
            assert not task.done(), what
        await task
        # Once the run is done the same writes go through.
        await update_item(store, held, title="mine now")
        await create(store, "a child", parent_id=held)


async def test_a_failure_after_several_chunks_removes_the_run_and_keeps_everyone_elses_writes(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1", replicated=True) as store:
        await runner.apply_plan(store, WriteContext(actor="t"), read_plan("beads", BEADS), apply.Options())
        mine = await create(store, "outside the import")
        before = counts(store)
        before_ids = set(store.reader.execute("SELECT id FROM work_items").fetchall())
        fail_after = runner.ITEMS_PER_CHUNK * 30 + 3  # outlasts the four writes below
        task = start_import(store, beads_source(tmp_path / "src", 3000), fail_after=fail_after)
        await running(store, task, at_least=runner.ITEMS_PER_CHUNK * 2)
        theirs = [await create(store, f"theirs {n}") for n in range(3)]
        mine = await update_item(store, mine["id"], title="changed during the import")
        with pytest.raises(apply.ImportAborted, match=f"after {fail_after} items"):
            await task
        after = counts(store)
        # Exactly the other writes remain: three creates and one update, each with history and outbox.
        assert after == {**before, "work_items": before["work_items"] + 3, "history": before["history"] + 4,
                         "outbox": before["outbox"] + 4}  # fmt: skip
        ids = set(store.reader.execute("SELECT id FROM work_items").fetchall())
        assert ids == before_ids | {(t["id"],) for t in theirs}
        assert get_item(store, mine["id"])["title"] == "changed during the import"
        failed = store.reader.execute("SELECT id FROM import_runs WHERE state = 'rolled_back'").fetchone()[0]
        assert store.reader.execute("SELECT COUNT(*) FROM outbox WHERE run_id = ?", (failed,)).fetchone()[0] == 0
        assert store.reader.execute("SELECT COUNT(*) FROM import_run_rows").fetchone()[0] == 0
        assert [r[0] for r in store.reader.execute("SELECT state FROM import_runs ORDER BY started_at")] == [
            "done", "rolled_back",
        ]  # fmt: skip


async def test_a_failed_re_import_puts_changed_items_back_as_they_were(tmp_path: Path) -> None:
    source = tmp_path / "proj"
    source.mkdir()
    lines = (BEADS / ".beads" / "issues.jsonl").read_text().splitlines()
    (source / "issues.jsonl").write_text("\n".join(lines) + "\n")
    async with Store(tmp_path / "s.sqlite3", machine="m1", replicated=True) as store:
        await runner.apply_plan(store, WriteContext(actor="t"), read_plan("beads", source), apply.Options())
        before = counts(store)
        rows = {i: get_item(store, i) for i in imported_ids(store)}
        first = json.loads(lines[0])
        lines[0] = json.dumps({**first, "title": "renamed in beads", "status": "closed"})
        (source / "issues.jsonl").write_text("\n".join(lines) + "\n")

        def broken(*_: Any) -> None:
            raise RuntimeError("disk on fire")

        plan = read_plan("beads", source)
        original = apply.Importer.gone_chunk
        apply.Importer.gone_chunk = broken  # type: ignore[method-assign]
        plan.gone.append(("nothing", "x:1"))  # make sure a gone chunk runs after the update committed
        try:
            with pytest.raises(RuntimeError, match="disk on fire"):
                await runner.apply_plan(store, WriteContext(actor="t"), plan, apply.Options())
        finally:
            apply.Importer.gone_chunk = original  # type: ignore[method-assign]
        assert counts(store) == before
        assert {i: get_item(store, i) for i in imported_ids(store)} == rows
        again = await runner.apply_plan(store, WriteContext(actor="t"), read_plan("beads", source), apply.Options())
        assert again["updated"] == 1


async def test_a_run_left_running_by_a_crash_is_rolled_back_when_the_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    plan = read_plan("beads", beads_source(tmp_path / "src", 300))
    async with Store(path, machine="m1", replicated=True) as store:
        before = counts(store)
        ctx = WriteContext(actor="importer")
        run_id = store.write_sync(import_runs.begin, ctx, "beads", "src")
        imp = apply.Importer(plan, apply.Options(), run_id)
        imp.locate(store.reader)
        store.write_sync(imp.items_chunk, WriteContext(actor="importer"), plan.items[:120])
        store.write_sync(imp.items_chunk, WriteContext(actor="importer"), plan.items[120:240])
        assert counts(store)["work_items"] == before["work_items"] + 240
        pushable = {op["entity_id"] for op in store.read(outbox.pending_ops, 1000)}
        assert pushable and not pushable & set(imported_ids(store)), "nothing of the running import is pushable"
    # The process is gone (as after kill -9): the run is still 'running' in the file.
    async with Store(path, machine="m1", replicated=True) as store:
        assert counts(store) == before
        state = store.reader.execute("SELECT state FROM import_runs WHERE id = ?", (run_id,)).fetchone()
        assert state == ("rolled_back",)
        report = await runner.apply_plan(store, WriteContext(actor="t"), plan, apply.Options())
        assert report["created"] == 300


async def test_held_operations_wait_for_their_run_and_later_ones_on_the_same_entity_wait_too(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1", replicated=True) as store:
        pushable = {op["op_id"] for op in store.read(outbox.pending_ops, 1000)}
        ctx = WriteContext(actor="importer")
        run_id = store.write_sync(import_runs.begin, ctx, "beads", "src")
        plan = read_plan("beads", beads_source(tmp_path / "src", 40))
        imp = apply.Importer(plan, apply.Options(), run_id)
        store.write_sync(imp.items_chunk, WriteContext(actor="importer"), plan.items)
        free = await create(store, "not the import's")
        held_item = imported_ids(store)[0]

        def later_op(conn: Any, ctx: WriteContext) -> None:  # as a bypass of the guards would queue one
            import_runs.guard_on(conn)
            args = m.parse_args(m.UpdateWorkItemArgs, {"id": held_item, "version": 1, "title": "x"})
            workitems.update(conn, ctx, args)
            import_runs.guard_off(conn)

        store.write_sync(later_op, WriteContext(actor="other"))
        ops = store.read(outbox.pending_ops, 1000)
        assert {op["entity_id"] for op in ops if op["op_id"] not in pushable} == {free["id"]}
        assert store.read(outbox.held_count) == 40  # the later update (not the run's) waits behind them
        store.write_sync(import_runs.finish, WriteContext(actor="importer"), run_id)
        ops = store.read(outbox.pending_ops, 1000)
        assert len([op for op in ops if op["entity_id"] == held_item]) == 2
        assert [op["seq"] for op in ops] == sorted(op["seq"] for op in ops)
        assert store.read(outbox.held_count) == 0


async def test_chunks_skip_the_fsync_but_every_other_write_stays_full(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1") as store:
        seen: list[int] = []

        def observe(conn: Any, ctx: WriteContext, items: Any) -> None:
            seen.append(conn.execute("PRAGMA synchronous").fetchone()[0])
            original(imp, conn, ctx, items)

        original = apply.Importer.items_chunk
        plan = read_plan("beads", BEADS)
        run_id = store.write_sync(import_runs.begin, WriteContext(actor="t"), "beads", "x")
        imp = apply.Importer(plan, apply.Options(fail_after=3), run_id)
        with pytest.raises(apply.ImportAborted):
            await runner._step(store, WriteContext(actor="t"), observe, plan.items, set())
        assert seen == [1]  # NORMAL inside the chunk
        assert store._writer is not None and store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2
        created = await create(store, "an ordinary write")
        assert created["version"] == 1 and store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2


async def test_a_dry_run_takes_no_writer_time_and_a_second_import_waits_its_turn(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1") as store:
        source = beads_source(tmp_path / "src", 3000)
        before = counts(store)
        dry = start_import(store, source, dry_run=True)
        await asyncio.sleep(0.01)  # the dry run is under way on a reader thread
        await create(store, "written during the dry run")
        assert not dry.done(), "a write waited for the dry run"
        report = await dry
        assert report["dry_run"] is True and report["created"] == 3000
        assert counts(store)["work_items"] == before["work_items"] + 1 and not imported_ids(store)

        task = start_import(store, source)
        await running(store, task)
        with pytest.raises(import_runs.ImportInProgressError) as second:
            await runner.apply_plan(store, WriteContext(actor="b"), read_plan("beads", source), apply.Options())
        assert second.value.details["reason"] == "import_in_progress"
        assert (await task)["created"] == 3000
