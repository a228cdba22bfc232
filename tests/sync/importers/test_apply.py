"""Applying a plan: one transaction, idempotent re-import, conflicts, dry run, injected failure, progress."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from importer_support import BACKLOG, BEADS, TASKMASTER_TAGGED, get_item, list_items, update_item, warning

from statusd import models as m
from statusd.store import Store, WriteContext, conflicts, dependencies, report
from statusd.sync.importers import apply, read_plan, runner


async def run_import(store: Store, source: str, path: Path, **options: Any) -> dict[str, Any]:
    plan = read_plan(source, path)
    result: dict[str, Any] = await runner.apply_plan(
        store, WriteContext(actor="importer"), plan, apply.Options(**options)
    )
    return result


def counts(store: Store) -> dict[str, int]:
    tables = ("work_items", "dependencies", "history", "outbox", "conflicts")
    return {t: store.reader.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


def by_source_id(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.reader.execute("SELECT id, json_extract(metadata, '$.source_key') FROM work_items").fetchall()
    return {key: get_item(store, ident) for ident, key in rows if key}


@pytest.fixture
def beads_copy(tmp_path: Path) -> Path:
    shutil.copytree(BEADS, tmp_path / "proj")
    return tmp_path / "proj" / ".beads" / "issues.jsonl"


def edit_line(file: Path, needle: str, old: str, new: str) -> None:
    lines = file.read_text().splitlines()
    (index,) = [i for i, line in enumerate(lines) if needle in line]
    lines[index] = lines[index].replace(old, new)
    file.write_text("\n".join(lines) + "\n")


async def test_first_import_counts_every_record_and_a_second_run_changes_nothing(store: Store) -> None:
    first = await run_import(store, "beads", BEADS)
    assert (first["created"], first["updated"], first["unchanged"], first["skipped"]) == (11, 0, 0, 4)
    assert first["records_read"] == first["created"] + first["skipped"]
    assert first["dependencies"] == {"created": 4, "unchanged": 0}
    assert "issues.jsonl:12" in warning(first, "app-o3p -> app-m2n", "close a cycle")
    before = counts(store)
    second = await run_import(store, "beads", BEADS)
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 11)
    assert second["dependencies"] == {"created": 0, "unchanged": 4} and not second["conflicts"]
    assert counts(store) == before  # not one history row: nothing was written


async def test_items_keep_hierarchy_dependencies_and_history_says_migration(store: Store) -> None:
    await run_import(store, "beads", BEADS)
    items = by_source_id(store)
    assert items["app-a1b.1.1"]["parent_id"] == items["app-a1b.1"]["id"]
    assert items["app-a1b.1.1"]["depth"] == 2
    assert items["app-c3d"]["parent_id"] == items["app-e5f"]["id"]
    waiting = dependencies.waiting_on(store.reader, items["app-a1b.2"]["id"])
    assert waiting == [items["app-a1b.1"]["id"]]
    vias = {r[0] for r in store.reader.execute("SELECT DISTINCT via FROM history WHERE entity = 'work_item'")}
    assert "migration" in vias


async def test_ready_follows_the_source(store: Store) -> None:
    await run_import(store, "beads", BEADS)
    ready = {i["title"] for i in list_items(store, ready=True, limit=500)["items"]}
    assert ready == {
        "Checkout redesign", "Cart summary component", "Upgrade the build toolchain", "Platform chores",
        "Screen reader labels", "Cache warmup on deploy",
    }  # fmt: skip


async def test_a_changed_source_record_updates_exactly_its_item(store: Store, beads_copy: Path) -> None:
    await run_import(store, "beads", beads_copy)
    before = {k: v["version"] for k, v in by_source_id(store).items()}
    edit_line(beads_copy, '"id":"app-c3d"', '"priority":4', '"priority":1')
    result = await run_import(store, "beads", beads_copy)
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 10)
    after = by_source_id(store)
    assert after["app-c3d"]["priority"] == "high" and after["app-c3d"]["metadata"]["beads"]["priority"] == 1
    assert {k for k, v in after.items() if v["version"] != before[k]} == {"app-c3d"}


async def test_a_field_changed_in_statusd_is_kept_and_the_clash_is_a_conflict(store: Store, beads_copy: Path) -> None:
    await run_import(store, "beads", beads_copy)
    item = by_source_id(store)["app-g7h"]
    await update_item(store, item["id"], title="Blocked on the vendor's v2 API", status="active")
    edit_line(beads_copy, '"id":"app-g7h"', "Blocked on vendor API", "Waiting for vendor API keys")
    result = await run_import(store, "beads", beads_copy)
    (conflict,) = result["conflicts"]
    assert conflict["field"] == "title" and conflict["source_id"] == "app-g7h"
    assert conflict["statusd_value"] == "Blocked on the vendor's v2 API"
    assert conflict["source_value"] == "Waiting for vendor API keys"
    now = get_item(store, item["id"])
    assert now["title"] == "Blocked on the vendor's v2 API"  # not overwritten
    assert now["status"] == "active"  # changed in statusd only: the source did not touch it
    (record,) = store.read(conflicts.list_conflicts, m.ListConflictsArgs())["conflicts"]
    assert record["kind"] == "import" and record["entity_id"] == item["id"]
    assert record["fields"]["title"] == {
        "base": "Blocked on vendor API",  # what the last import wrote
        "local": "Waiting for vendor API keys",  # the source's new value (keep_local applies it)
        "remote": "Blocked on the vendor's v2 API",  # statusd's, which stays
    }
    again = await run_import(store, "beads", beads_copy)
    assert (again["updated"], again["conflicts"]) == (0, [])  # reported once, not on every run
    args = m.ResolveConflictArgs(id=record["id"], resolution="keep_local")
    await store.write(conflicts.resolve, WriteContext(actor="dana"), args)
    assert get_item(store, item["id"])["title"] == "Waiting for vendor API keys"
    assert (await run_import(store, "beads", beads_copy))["updated"] == 0


async def test_an_edge_removed_in_statusd_is_not_restored(store: Store) -> None:
    await run_import(store, "beads", BEADS)
    items = by_source_id(store)
    edge = m.DependencyArgs(work_item_id=items["app-g7h"]["id"], depends_on_id=items["app-c3d"]["id"])
    await store.write(dependencies.remove, WriteContext(actor="dana"), edge)
    result = await run_import(store, "beads", BEADS)
    warning(result, "app-g7h -> app-c3d", "removed in statusd")
    assert dependencies.waiting_on(store.reader, items["app-g7h"]["id"]) == []


async def test_dry_run_reports_the_same_and_writes_nothing(store: Store) -> None:
    before = counts(store)
    dry = await run_import(store, "backlog", BACKLOG, dry_run=True)
    assert dry["dry_run"] is True and (dry["created"], dry["skipped"]) == (10, 3)
    assert counts(store) == before
    real = await run_import(store, "backlog", BACKLOG)
    assert {k: v for k, v in real.items() if k != "dry_run"} == {k: v for k, v in dry.items() if k != "dry_run"}


@pytest.mark.parametrize("replicated", [False, True])
async def test_a_failure_injected_mid_import_rolls_everything_back(tmp_path: Path, replicated: bool) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1", replicated=replicated) as store:
        await run_import(store, "beads", BEADS)
        before = counts(store)
        with pytest.raises(apply.ImportAborted, match="after 5 items"):
            await run_import(store, "taskmaster", TASKMASTER_TAGGED, fail_after=5)
        assert counts(store) == before


async def test_failure_hook_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSD_IMPORT_FAIL_AFTER", "3")
    assert apply.Options().fail_after == 3
    monkeypatch.delenv("STATUSD_IMPORT_FAIL_AFTER")
    assert apply.Options().fail_after is None


async def test_progress_climbs_to_the_total(store: Store) -> None:
    seen: list[tuple[int, int]] = []
    await run_import(store, "taskmaster", TASKMASTER_TAGGED, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] == 14 + 9  # items + planned edges (one closes a cycle)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


async def test_imported_items_are_queued_for_replication_in_the_same_transaction(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3", machine="m1", replicated=True) as store:
        base = counts(store)
        await run_import(store, "taskmaster", TASKMASTER_TAGGED)
        after = counts(store)
        assert after["work_items"] - base["work_items"] == 14
        assert after["outbox"] - base["outbox"] == after["history"] - base["history"] == 14 + 8


@pytest.mark.parametrize(("source", "path", "source_id"), [
    ("beads", BEADS, "app-a1b.2"), ("backlog", BACKLOG, "task-2.1"), ("taskmaster", TASKMASTER_TAGGED, "2.3"),
])  # fmt: skip
async def test_searching_for_a_source_id_finds_the_item(store: Store, source: str, path: Path, source_id: str) -> None:
    await run_import(store, source, path)
    found = list_items(store, text=source_id)["items"]
    assert source_id in {get_item(store, i["id"])["metadata"]["source_id"] for i in found}


async def test_a_record_tombstoned_in_beads_since_the_last_import_deletes_its_item(
    store: Store, beads_copy: Path
) -> None:
    await run_import(store, "beads", beads_copy)
    edit_line(
        beads_copy, '"id":"app-o3p"', '"status":"open"', '"status":"tombstone","deleted_at":"2026-02-01T00:00:00Z"'
    )
    result = await run_import(store, "beads", beads_copy)
    assert (result["deleted"], result["created"], result["updated"]) == (1, 0, 0)
    assert get_item(store, by_source_id(store)["app-o3p"]["id"])["deleted_at"] is not None
    assert (await run_import(store, "beads", beads_copy))["deleted"] == 0


async def test_archived_items_are_not_imported_twice_nor_changed(tmp_path: Path, beads_copy: Path) -> None:
    moments = iter(f"2026-0{month}-01T00:00:00.000000Z" for month in range(1, 10))
    now = {"at": next(moments)}
    async with Store(tmp_path / "s.sqlite3", machine="m1", clock=lambda: now["at"]) as store:
        await run_import(store, "beads", beads_copy)
        now["at"] = next(moments)
        await store.write(report.archive, WriteContext(actor="archiver"), 0)  # everything is older than "now"
        edit_line(beads_copy, '"id":"app-c3d"', '"priority":4', '"priority":1')
        again = await run_import(store, "beads", beads_copy)
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 11)
        warning(again, "app-c3d", "archived in statusd")


async def test_a_source_parent_that_no_longer_fits_statusd_tree_is_a_warning_not_a_failure(
    store: Store, beads_copy: Path
) -> None:
    await run_import(store, "beads", beads_copy)
    items = by_source_id(store)
    # In statusd, the chores epic (with app-c3d under it) moves under app-a1b.1.1: app-c3d is now at depth 4.
    await update_item(store, items["app-e5f"]["id"], parent_id=items["app-a1b.1.1"]["id"])
    assert get_item(store, items["app-c3d"]["id"])["depth"] == 4
    # The source now files app-m2n under app-c3d: depth 5, which statusd cannot hold.
    parent_edge = '{"issue_id":"app-m2n","depends_on_id":"app-c3d","type":"parent-child"},'
    edit_line(beads_copy, '"id":"app-m2n"', '"dependencies":[', '"dependencies":[' + parent_edge)
    result = await run_import(store, "beads", beads_copy)
    assert "depth" in warning(result, "app-m2n keeps its statusd parent")
    assert get_item(store, items["app-m2n"]["id"])["parent_id"] is None
    assert (await run_import(store, "beads", beads_copy))["updated"] == 0  # said once
