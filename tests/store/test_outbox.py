"""The outbox (SPEC §1, §5.2): one row per change, in the same transaction as its history row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from store_support import (
    FakeClock,
    add_edge,
    claim,
    create_enhancement,
    create_item,
    create_vendor,
    ctx,
    deployment_metadata,
    remove_edge,
    update_enhancement,
    update_item,
    update_vendor,
)

from statusd import models as m
from statusd.errors import ValidationError
from statusd.store import Store, WriteContext, configuration, deployments, report, workitems
from statusd.store import entities as ent


@pytest.fixture
async def rstore(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    async with Store(tmp_path / "replicated.sqlite3", machine="m1", replicated=True, clock=clock) as s:
        yield s


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return store.reader.execute(sql).fetchall()


def assert_outbox_matches_history(store: Store) -> int:
    history = rows(store, "SELECT op_id, entity, entity_id, version, changes FROM history WHERE via != 'sync'")
    outbox = rows(store, "SELECT op_id, entity, entity_id, new_version, changes FROM outbox ORDER BY seq")
    assert [h[0] for h in history] == [o[0] for o in outbox]
    assert all(h[0] is not None for h in history)
    assert history == outbox
    bases = rows(store, "SELECT base_version, new_version FROM outbox")
    assert all(base == new - 1 for base, new in bases)
    return len(outbox)


async def exercise_every_write(store: Store, clock: FakeClock) -> None:
    parent = await create_item(store, item_type="project")
    child = await create_item(store, parent_id=parent["id"])
    other = await create_item(store)
    await update_item(store, child["id"], title="renamed", metadata={"k": 1})
    await update_item(store, child["id"], parent_id=other["id"])
    await add_edge(store, child["id"], parent["id"])
    await remove_edge(store, child["id"], parent["id"])
    await claim(store, id=other["id"])
    await update_item(store, other["id"], status="completed")
    await update_item(store, parent["id"], deleted=True)
    vendor = await create_vendor(store, "Acme")
    await update_vendor(store, "Acme", 1, status="operational")
    await store.write(
        deployments.record,
        ctx(),
        m.parse_args(
            m.RecordDeploymentArgs,
            {"metadata": deployment_metadata(), "vendor_ids": [vendor["id"]], "work_item_ids": [child["id"]]},
        ),
    )
    enh = await create_enhancement(store)
    await update_enhancement(store, enh["id"], 1, status="approved")
    version = store.read(configuration.get)["version"]
    await store.write(
        configuration.update, ctx(), m.parse_args(m.UpdateConfigurationArgs, {"version": version, "git_branch": "x"})
    )
    clock.advance(days=400)
    await store.write(report.archive, WriteContext(actor="archiver"), 365)


async def test_every_change_writes_exactly_one_outbox_row(rstore: Store, clock: FakeClock) -> None:
    assert assert_outbox_matches_history(rstore) == 1  # the configuration created on first open
    await exercise_every_write(rstore, clock)
    count = assert_outbox_matches_history(rstore)
    assert count == len(rows(rstore, "SELECT 1 FROM history"))
    entities = {r[0] for r in rows(rstore, "SELECT DISTINCT entity FROM outbox")}
    assert entities == {"work_item", "dependency", "vendor", "deployment", "enhancement", "configuration"}


async def test_write_context_lists_its_op_ids(rstore: Store) -> None:
    c = ctx()
    item = await rstore.write(
        workitems.create, c, m.parse_args(m.CreateWorkItemArgs, {"item_type": "task", "title": "x"})
    )
    (op_id,) = c.op_ids
    assert rows(rstore, f"SELECT entity_id FROM outbox WHERE op_id = '{op_id}'") == [(item["id"],)]
    assert json.loads(rows(rstore, f"SELECT changes FROM outbox WHERE op_id = '{op_id}'")[0][0])["title"] == {
        "old": None,
        "new": "x",
    }


async def test_no_op_writes_queue_nothing(rstore: Store) -> None:
    a = await create_item(rstore, title="same")
    b = await create_item(rstore)
    before = assert_outbox_matches_history(rstore)
    await update_item(rstore, a["id"], title="same")
    await add_edge(rstore, a["id"], b["id"])
    await add_edge(rstore, a["id"], b["id"])
    assert assert_outbox_matches_history(rstore) == before + 1


async def test_a_failing_write_leaves_neither_outbox_nor_history(rstore: Store) -> None:
    item = await create_item(rstore)
    before = (len(rows(rstore, "SELECT 1 FROM history")), len(rows(rstore, "SELECT 1 FROM outbox")))

    def insert_then_fail(conn: sqlite3.Connection, c: WriteContext) -> None:
        current = ent.get(conn, ent.WORK_ITEM, item["id"])
        assert current is not None
        ent.update(conn, c, ent.WORK_ITEM, current, {"title": "lost"})
        ent.insert(conn, c, ent.VENDOR, {"name": "x", "status": "broken", "metadata": {}})
        raise ValidationError.one("title", "rejected late")

    c = ctx()
    with pytest.raises(ValidationError):
        await rstore.write(insert_then_fail, c)
    assert (len(rows(rstore, "SELECT 1 FROM history")), len(rows(rstore, "SELECT 1 FROM outbox"))) == before
    assert c.op_ids == []
    assert rows(rstore, "SELECT COUNT(*) FROM vendors") == [(0,)]
    assert rows(rstore, f"SELECT title, version FROM work_items WHERE id = '{item['id']}'") == [("an item", 1)]


async def test_a_rejected_tool_write_queues_nothing(rstore: Store) -> None:
    before = assert_outbox_matches_history(rstore)
    with pytest.raises(ValidationError):
        await create_item(rstore, item_type="session", metadata={"token_budget": 1})
    assert assert_outbox_matches_history(rstore) == before


async def test_changes_arriving_by_sync_are_recorded_but_not_queued(rstore: Store) -> None:
    before = assert_outbox_matches_history(rstore)
    args = m.parse_args(m.CreateWorkItemArgs, {"item_type": "task", "title": "pulled"})
    item = await rstore.write(workitems.create, WriteContext(actor="remote", via="sync"), args)
    assert assert_outbox_matches_history(rstore) == before
    assert rows(rstore, f"SELECT via, op_id FROM history WHERE entity_id = '{item['id']}'") == [("sync", None)]


async def test_standalone_writes_no_outbox_rows(cstore: Store, clock: FakeClock) -> None:
    await exercise_every_write(cstore, clock)
    assert rows(cstore, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert rows(cstore, "SELECT COUNT(*) FROM history WHERE op_id IS NOT NULL") == [(0,)]
    assert len(rows(cstore, "SELECT 1 FROM history")) > 15


async def test_an_outbox_failure_also_undoes_the_change_and_its_history(rstore: Store) -> None:
    rstore.write_sync(
        lambda conn, _c: conn.execute(
            "CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox full'); END"
        ),
        ctx(),
    )
    before = len(rows(rstore, "SELECT 1 FROM history"))
    with pytest.raises(sqlite3.IntegrityError, match="outbox full"):
        await create_item(rstore, title="never stored")
    assert len(rows(rstore, "SELECT 1 FROM history")) == before
    assert rows(rstore, "SELECT COUNT(*) FROM work_items") == [(0,)]
