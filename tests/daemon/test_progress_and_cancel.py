"""Progress notifications for long calls and cancellation that stops the work (SPEC §4.4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp_support import seed_archivable_items, until

from statusd.daemon.tools import ARCHIVE_BATCH
from statusd.progress import in_batches
from surface_support import raw_client, serving

ITEMS = ARCHIVE_BATCH * 40


def archived_count(server) -> int:
    row = server.service.store.reader.execute("SELECT COUNT(*) FROM work_items WHERE archived_at IS NOT NULL")
    return int(row.fetchone()[0])


def archive_call(ident: int, token: str | None) -> dict:
    params: dict = {"name": "trigger_archiving", "arguments": {}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


@pytest.fixture(params=[True, False], ids=["fast-path", "sdk-path"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_archiving_reports_progress_per_batch_then_answers(tmp_path: Path, fast_path: bool):
    seed_archivable_items(tmp_path / "store.sqlite3", ITEMS)
    async with serving(tmp_path / "store.sqlite3", fast_path=fast_path) as server, raw_client(server.path) as client:
        await client.initialize()
        await client.send(archive_call(1, "archive-1"))
        _, answer = await client.answer(1, within=60)
        progress = [json.loads(line) for line in client.lines if b"notifications/progress" in line]

    assert answer["result"]["structuredContent"]["archived"] == ITEMS
    assert len(progress) == ITEMS // ARCHIVE_BATCH  # one per batch: every item is its own subtree
    values = [p["params"]["progress"] for p in progress]
    assert values == sorted(values) and values[-1] == progress[-1]["params"]["total"] == ITEMS
    assert all(p["params"]["progressToken"] == "archive-1" for p in progress)


async def test_no_progress_without_a_token(tmp_path: Path):
    seed_archivable_items(tmp_path / "store.sqlite3", ARCHIVE_BATCH * 2)
    async with serving(tmp_path / "store.sqlite3") as server, raw_client(server.path) as client:
        await client.initialize()
        await client.send(archive_call(1, None))
        await client.answer(1, within=60)
    assert not [line for line in client.lines if b"notifications/progress" in line]


async def test_a_cancelled_archiving_stops_and_is_not_answered(tmp_path: Path, fast_path: bool):
    seed_archivable_items(tmp_path / "store.sqlite3", ITEMS)
    async with serving(tmp_path / "store.sqlite3", fast_path=fast_path) as server, raw_client(server.path) as client:
        await client.initialize()
        await client.send(archive_call(1, "archive-1"))
        await client.notification("notifications/progress", within=60)
        await client.send(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "stop"}}
        )
        await until(lambda: server.service.in_flight == 0, within=30, what="the cancelled call to end")
        stopped_at = archived_count(server)
        # The call has ended: no later batch can start. A round trip later nothing more was archived.
        assert (await client.request(2, "ping"))["result"] == {}
        assert archived_count(server) == stopped_at
        assert 0 < stopped_at < ITEMS, "cancelled after the first batch and before the last"
        assert all(json.loads(line).get("id") != 1 for line in client.lines)
        # What was left is archived by the next call: nothing was lost, nothing half-done.
        answer = await client.request(3, "tools/call", {"name": "trigger_archiving", "arguments": {}})
        assert answer["result"]["structuredContent"]["archived"] == ITEMS - stopped_at


async def test_in_batches_reports_each_batch_and_sums_the_work():
    seen: list[tuple[int, int]] = []

    async def work(batch) -> int:
        return len(batch) * 10

    total = await in_batches(list(range(7)), 3, work, lambda done, total: seen.append((done, total)))
    assert total == 70
    assert seen == [(3, 7), (6, 7), (7, 7)]
