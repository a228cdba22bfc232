"""A cancelled ``import_tasks`` is not answered and writes nothing (SPEC §4.4, issue 8 item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp_support import until

from surface_support import raw_client, serving

RECORDS = 4000


def beads_file(path: Path, n: int) -> Path:
    records = (
        {"id": f"bd-{i}", "title": f"issue {i}", "status": "open", "priority": i % 5, "issue_type": "task"}
        for i in range(1, n + 1)
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def imported(server) -> int:
    row = server.service.store.reader.execute(
        "SELECT COUNT(*) FROM work_items WHERE json_extract(metadata, '$.source') = 'beads'"
    )
    return int(row.fetchone()[0])


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "sdk-path"])
async def test_a_cancelled_import_rolls_back_and_is_not_answered(tmp_path: Path, fast_path: bool) -> None:
    source = beads_file(tmp_path / "issues.jsonl", RECORDS)
    async with serving(tmp_path / "store.sqlite3", fast_path=fast_path) as server, raw_client(server.path) as client:
        await client.initialize()
        params = {
            "name": "import_tasks",
            "arguments": {"source": "beads", "path": str(source)},
            "_meta": {"progressToken": "import-1"},
        }
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
        await client.notification("notifications/progress", within=60)
        await client.send(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "stop"}}
        )
        await until(lambda: server.service.in_flight == 0, within=60, what="the cancelled import to end")
        assert (await client.request(2, "ping"))["result"] == {}
        assert all(json.loads(line).get("id") != 1 for line in client.lines)
        assert imported(server) == 0, "a cancelled import rolled back whole"
        # The same import, not cancelled, then goes through: nothing was left half-done.
        answer = await client.request(3, "tools/call", {"name": "import_tasks", "arguments": params["arguments"]})
        assert answer["result"]["structuredContent"]["created"] > 0
        assert imported(server) == answer["result"]["structuredContent"]["created"]
