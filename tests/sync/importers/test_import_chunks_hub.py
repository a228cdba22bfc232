"""With a hub: nothing of a failed import reaches Postgres, all of a successful one does, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sync_support import Replica, hub_entities, hub_fetch, wait_for
from test_import_chunks import beads_source, create, imported_ids, running, start_import

from statusd.store import Store, WriteContext, outbox
from statusd.sync.importers import apply, read_plan, runner


async def on_hub(dsn: str, schema: str, ident: str) -> dict[str, Any] | None:
    hub = await hub_entities(dsn, schema)
    return hub if ident in hub else None


async def drained(store: Store) -> None:
    await wait_for(lambda: store.read(outbox.summary)[0] == 0, within=60, what="the outbox to drain")


def from_beads(hub: dict[str, Any]) -> list[str]:
    return [i for i, e in hub.items() if (e["fields"].get("metadata") or {}).get("source") == "beads"]


async def test_a_failed_run_never_reaches_the_hub_and_a_good_one_arrives_exactly_once(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    replica = Replica(tmp_path / "s.sqlite3", dsn, schema, machine="m1").open().start()
    try:
        await replica.wait_online()
        store = replica.store
        fail_after = runner.ITEMS_PER_CHUNK * 100  # outlasts the push below, whatever the chunk size
        n = fail_after + 100
        source = beads_source(tmp_path / "src", n)
        task = start_import(store, source, fail_after=fail_after)
        await running(store, task, at_least=runner.ITEMS_PER_CHUNK * 3)
        theirs = await create(store, "written during the import")
        # Another client's write is pushed while the import runs; the import's operations are held.
        hub = await wait_for(lambda: on_hub(dsn, schema, theirs["id"]), what="the other write on the hub")
        assert not task.done() and not from_beads(hub)
        with pytest.raises(apply.ImportAborted):
            await task
        await drained(store)
        hub = await hub_entities(dsn, schema)
        assert theirs["id"] in hub and not from_beads(hub)

        plan = read_plan("beads", source)
        report = await runner.apply_plan(store, WriteContext(actor="importer"), plan, apply.Options())
        assert report["created"] == n
        await drained(store)
        ids = imported_ids(store)
        assert len(ids) == n and sorted(from_beads(await hub_entities(dsn, schema))) == sorted(ids)
        sql = f"SELECT entity_id, count(*) FROM {schema}.changes WHERE entity_id = ANY($1) GROUP BY entity_id"
        changes = await hub_fetch(dsn, sql, ids)
        assert len(changes) == n and {r[1] for r in changes} == {1}, "each imported item arrived exactly once"
    finally:
        await replica.close()
