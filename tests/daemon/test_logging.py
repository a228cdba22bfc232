"""logging/setLevel and notifications/message (SPEC §4.4): sync-state changes and new conflicts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from statusd.models import CreateWorkItemArgs
from statusd.store import WriteContext, apply, outbox, workitems
from surface_support import raw_client, serving

UNREACHABLE = ("postgresql://127.0.0.1:1/nothing", "statusd_unreachable")


def messages(lines: list[bytes]) -> list[dict]:
    return [json.loads(line)["params"] for line in lines if b'"notifications/message"' in line]


async def test_postgres_lost_reaches_sessions_at_or_below_warning(tmp_path: Path):
    async with (
        serving(tmp_path / "store.sqlite3", hub=UNREACHABLE) as server,
        raw_client(server.path) as quiet,
        raw_client(server.path) as listening,
    ):
        await quiet.initialize()
        await listening.initialize()
        assert (await quiet.request(1, "logging/setLevel", {"level": "error"}))["result"] == {}
        assert (await listening.request(1, "logging/setLevel", {"level": "warning"}))["result"] == {}
        replicator = server.service.replicator
        assert replicator is not None
        task = asyncio.create_task(replicator.run())
        try:
            lost = (await listening.notification("notifications/message"))["params"]
            await quiet.request(2, "ping")  # anything sent to it before this answer has arrived
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert lost["level"] == "warning" and lost["data"]["event"] == "postgres_lost"
    assert messages(quiet.lines) == [], "a session at level error does not get warnings"


async def test_set_level_rejects_an_unknown_level(tmp_path: Path):
    async with serving(tmp_path / "store.sqlite3") as server, raw_client(server.path) as client:
        await client.initialize()
        answer = await client.request(1, "logging/setLevel", {"level": "loud"})
    assert answer["error"]["code"] == -32602


async def test_a_new_conflict_is_a_warning_message(tmp_path: Path):
    async with serving(tmp_path / "store.sqlite3", hub=UNREACHABLE) as server, raw_client(server.path) as client:
        await client.initialize()
        store = server.service.store
        item = await store.write(
            workitems.create, WriteContext(actor="me"), CreateWorkItemArgs(item_type="task", title="mine")
        )
        op = next(o for o in store.read(outbox.pending_ops, 10) if o["entity_id"] == item["id"])
        # The hub's verdict for a queued write that clashed with another machine's (what _push records).
        verdict = {
            "verdict": "conflict",
            "entity_id": item["id"],
            "version": 2,
            "conflicts": {"title": {"base": None, "local": "mine", "remote": "theirs"}},
        }
        await store.write(apply.settle, WriteContext(actor="statusd", via="sync"), [op], [verdict])
        message = (await client.notification("notifications/message"))["params"]
    assert message["level"] == "warning"
    assert message["data"]["event"] == "conflicts" and message["data"]["open_conflicts"] == 1
