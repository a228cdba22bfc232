"""``store/apply.py`` directly, on a real replicated store: verdicts, rebasing, pulled changes."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from statusd import models as m
from statusd.store import Store, WriteContext, apply, outbox, schema, vendors, workitems
from statusd.store import entities as ent


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "r.sqlite3", machine="here", replicated=True) as s:
        s.write_sync(lambda conn, ctx: conn.execute("DELETE FROM outbox"), WriteContext(actor="t"))
        yield s


def hub_data(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ent.WORK_ITEM.fields if k not in ent.DERIVED}


async def create(store: Store, title: str = "x") -> dict[str, Any]:
    args = m.parse_args(m.CreateWorkItemArgs, {"item_type": "task", "title": title})
    item = await store.write(workitems.create, WriteContext(actor="maker"), args)
    ops = store.read(outbox.pending_ops, 10)
    await store.write(apply.settle, WriteContext(actor="statusd", via="sync"), ops, [applied(ops[0], 1, item)])
    return item


async def update(store: Store, ident: str, version: int, actor: str = "c", confirming: bool = False, **f: Any) -> Any:
    args = m.parse_args(m.UpdateWorkItemArgs, {"id": ident, "version": version, **f})
    ctx = WriteContext(actor=actor, confirming=confirming)
    row = await store.write(workitems.update, ctx, args)
    return row, ctx


def applied(op: dict[str, Any], version: int, data: dict[str, Any], verdict: str = "applied") -> dict[str, Any]:
    return {"verdict": verdict, "entity_id": op["entity_id"], "version": version, "data": hub_data(data)}


def row(store: Store, ident: str) -> dict[str, Any]:
    got = store.read(ent.get, ent.WORK_ITEM, ident)
    assert got is not None
    return got


async def test_a_rejection_leaves_the_hubs_state_with_queued_ops_on_top(store: Store) -> None:
    item = await create(store)
    await update(store, item["id"], 1, actor="c1", title="rejected title")
    await update(store, item["id"], 2, actor="c2", priority="high")
    first, second = store.read(outbox.pending_ops, 10)
    assert (first["actor"], first["via"], second["actor"]) == ("c1", "tool", "c2")  # from the outbox row
    hub = {**hub_data(item), "title": "their title", "description": "theirs too"}
    verdict = {"verdict": "rejected", "entity_id": item["id"], "version": 4, "data": hub, "updated_by": "r2"}
    outcomes = await store.write(apply.settle, WriteContext(actor="statusd", via="sync"), [first], [verdict])
    assert outcomes[0]["verdict"] == "rejected"
    now = row(store, item["id"])
    assert (now["title"], now["description"], now["priority"], now["version"]) == (
        "their title",
        "theirs too",
        "high",
        5,
    )
    (left,) = store.read(outbox.pending_ops, 10)
    assert (left["op_id"], left["base_version"], left["new_version"]) == (second["op_id"], 4, 5)
    assert left["changes"] == second["changes"]  # the values its writer saw stay, for the hub's merge
    versions = store.reader.execute(
        "SELECT op_id, version FROM history WHERE entity_id = ? ORDER BY seq", (item["id"],)
    ).fetchall()
    assert (first["op_id"], 2) not in versions and (second["op_id"], 5) in versions


async def test_a_queued_conflict_keeps_the_remote_value_in_the_store_under_later_ops(store: Store) -> None:
    item = await create(store)
    await update(store, item["id"], 1, title="mine")
    await update(store, item["id"], 2, description="also mine")
    first, _ = store.read(outbox.pending_ops, 10)
    hub = {**hub_data(item), "title": "theirs"}
    verdict = {
        "verdict": "conflict",
        "entity_id": item["id"],
        "version": 2,
        "data": hub,
        "conflicts": {"title": {"base": "x", "local": "mine", "remote": "theirs"}},
    }
    await store.write(apply.settle, WriteContext(actor="statusd", via="sync"), [first], [verdict])
    now = row(store, item["id"])
    assert (now["title"], now["description"], now["version"]) == ("theirs", "also mine", 3)
    (fields,) = store.reader.execute("SELECT fields FROM conflicts").fetchone()
    assert json.loads(fields)["title"]["local"] == "mine"


async def test_a_no_op_write_queues_a_check_only_for_a_waiting_caller(store: Store) -> None:
    item = await create(store)
    _, quiet = await update(store, item["id"], 1, title="x")
    assert quiet.op_ids == [] and store.read(outbox.pending_ops, 10) == []
    _, waiting = await update(store, item["id"], 1, confirming=True, title="x")
    (check,) = store.read(outbox.pending_ops, 10)
    assert waiting.op_ids == [check["op_id"]]
    assert (check["changes"], check["base_version"], check["new_version"]) == ({}, 1, 1)
    assert store.reader.execute("SELECT COUNT(*) FROM history WHERE op_id = ?", (check["op_id"],)).fetchone()[0] == 0
    # The hub has moved on: the check is rejected and the store takes the hub's state.
    hub = {**hub_data(item), "title": "moved"}
    verdict = {"verdict": "rejected", "entity_id": item["id"], "version": 2, "data": hub, "updated_by": "r2"}
    await store.write(apply.settle, WriteContext(actor="statusd", via="sync"), [check], [verdict])
    assert (row(store, item["id"])["title"], row(store, item["id"])["version"]) == ("moved", 2)


async def test_pulled_changes_of_our_own_operations_are_skipped(store: Store) -> None:
    item = await create(store)
    await update(store, item["id"], 1, title="ours")
    (op,) = store.read(outbox.pending_ops, 10)
    ours = {**hub_data(row(store, item["id"])), "title": "ours"}
    await store.write(apply.settle, WriteContext(actor="statusd", via="sync"), [op], [applied(op, 2, ours)])
    history_before = store.reader.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    change = {
        "entity": "work_item",
        "entity_id": item["id"],
        "version": 2,
        "data": {**ours, "title": "echo must not be applied"},  # were it applied, this would show
        "changes": {"title": {"old": "x", "new": "ours"}},
        "op_id": op["op_id"],
        "actor": "c",
        "at": "2026-01-01T00:00:00Z",
        "machine": "here",
        "via": "tool",
    }
    theirs = {**change, "op_id": str(uuid.uuid4()), "version": 3, "machine": "there"}
    theirs["data"] = {**ours, "priority": "low"}
    theirs["changes"] = {"priority": {"old": "medium", "new": "low"}}
    applied_count = await store.write(
        apply.apply_pulled, WriteContext(actor="statusd", via="sync"), [change, theirs], "7:1"
    )
    assert applied_count == 1
    now = row(store, item["id"])
    assert (now["title"], now["priority"], now["version"]) == ("ours", "low", 3)
    assert store.reader.execute("SELECT COUNT(*) FROM history").fetchone()[0] == history_before + 1
    assert store.meta("pull_cursor") == "7:1"


def test_the_outbox_migration_reads_actor_and_via_from_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite3"
    before = schema.MIGRATIONS[: schema.MIGRATIONS.index(("0007_outbox_actor", schema._outbox_actor))]
    monkeypatch.setattr(schema, "MIGRATIONS", before)
    monkeypatch.setattr(schema, "LATEST_VERSION", len(before))
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn)
    conn.execute(
        "INSERT INTO history(entity, entity_id, version, changes, actor, at, machine, via, op_id) "
        "VALUES ('work_item', 'e', 2, '{}', 'alice', 'now', 'here', 'markdown', 'op-1')"
    )
    conn.execute(
        "INSERT INTO outbox(op_id, entity, entity_id, base_version, new_version, changes, created_at) "
        "VALUES ('op-1', 'work_item', 'e', 1, 2, '{}', 'now'), ('op-2', 'work_item', 'e', 2, 3, '{}', 'now')"
    )
    monkeypatch.undo()
    schema.migrate(conn)
    rows = conn.execute("SELECT op_id, actor, via FROM outbox ORDER BY seq").fetchall()
    conn.close()
    assert rows == [("op-1", "alice", "markdown"), ("op-2", "unknown", "tool")]


async def test_a_check_behind_a_rejected_op_is_rejected_even_when_the_hub_passes_its_version(store: Store) -> None:
    """c3 saw c1's still-unjudged title and wrote the same (a no-op): once c1's write is rejected,
    the hub does not hold that title, so c3 must not be told ``confirmed`` either."""
    item = await create(store)
    await update(store, item["id"], 1, actor="c1", title="c1 title")
    _, c3 = await update(store, item["id"], 2, actor="c3", confirming=True, title="c1 title")
    first, check = store.read(outbox.pending_ops, 10)
    assert check["asserts"] == {"title": "c1 title"} and c3.op_ids == [check["op_id"]]
    hub = {**hub_data(item), "title": "r2 title"}
    rejected = {"verdict": "rejected", "entity_id": item["id"], "version": 2, "data": hub, "updated_by": "r2"}
    passed = {"verdict": "applied", "entity_id": item["id"], "version": 2, "data": hub}  # version only
    outcomes = await store.write(
        apply.settle, WriteContext(actor="statusd", via="sync"), [first, check], [rejected, passed]
    )
    assert [o["verdict"] for o in outcomes] == ["rejected", "rejected"]
    assert (row(store, item["id"])["title"], row(store, item["id"])["version"]) == ("r2 title", 2)
    assert store.read(outbox.pending_ops, 10) == []


async def vendor_create(store: Store, name: str) -> dict[str, Any]:
    args = m.parse_args(m.CreateVendorArgs, {"name": name})
    return await store.write(vendors.create, WriteContext(actor="c"), args)


def duplicate_of(op: dict[str, Any], winner: str) -> dict[str, Any]:
    data = {"name": "Acme", "status": "operational", "metadata": {}, "deleted_at": None}
    return {"verdict": "duplicate", "entity_id": winner, "version": 1, "data": data, "updated_by": "r2"}


async def test_a_create_refused_as_a_duplicate_to_a_waiting_caller_leaves_nothing_behind(store: Store) -> None:
    """The caller heard ``duplicate``: nothing was made, so no hidden row stays in this store only."""
    mine = await vendor_create(store, "acme")
    (op,) = store.read(outbox.pending_ops, 10)
    winner = str(uuid.uuid4())
    await store.write(
        apply.settle, WriteContext(actor="statusd", via="sync"), [{**op, "strict": True}], [duplicate_of(op, winner)]
    )
    ids = [r[0] for r in store.reader.execute("SELECT id FROM vendors").fetchall()]
    assert ids == [winner]
    assert store.reader.execute("SELECT COUNT(*) FROM history WHERE entity_id = ?", (mine["id"],)).fetchone()[0] == 0
    assert store.reader.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0


async def test_a_refused_create_with_queued_writes_behind_it_keeps_them_in_a_conflict(store: Store) -> None:
    mine = await vendor_create(store, "acme")
    args = m.parse_args(m.UpdateVendorArgs, {"name": "acme", "version": 1, "status": "operational"})
    await store.write(vendors.update, WriteContext(actor="c2"), args)
    create, _ = store.read(outbox.pending_ops, 10)
    await store.write(
        apply.settle,
        WriteContext(actor="statusd", via="sync"),
        [{**create, "strict": True}],
        [duplicate_of(create, str(uuid.uuid4()))],
    )
    (local_op,) = store.reader.execute("SELECT local_op FROM conflicts WHERE kind = 'duplicate'").fetchone()
    kept = json.loads(local_op)
    assert kept["entity_id"] == mine["id"] and kept["changes"]["status"]["new"] == "operational"
    assert store.read(outbox.pending_ops, 10) == []
