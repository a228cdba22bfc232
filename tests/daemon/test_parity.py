"""The fast path and the SDK path answer every tool call with the same bytes (SPEC §4.4, issue 10).

The same scenario — every tool in the tool table, called validly and invalidly, plus calls the
fast path hands to the SDK — runs twice from the same empty store: once on a server whose fast
path is off (the SDK answers everything) and once with it on. A fixed clock and deterministic ids
make the two runs' answers comparable byte for byte.
"""

from __future__ import annotations

import itertools
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from mcp_support import seed_archivable_items

from statusd.daemon import fastpath
from statusd.daemon.tools import ARCHIVE_BATCH, TOOLS
from statusd.store import Store
from statusd.store import entities as store_entities
from surface_support import RawClient, raw_client, serving

NOW = "2026-11-30T12:00:00.000000Z"
OLD_ITEMS = ARCHIVE_BATCH * 3


async def scenario(client: RawClient, version: str) -> list[bytes]:
    """Call every tool validly and invalidly; return each answer's raw line, in order."""
    lines: list[bytes] = []
    counter = itertools.count(1)

    async def call(name: str, arguments: Any) -> dict[str, Any]:
        ident = next(counter)
        await client.send(
            {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        )
        line, answer = await client.answer(ident)
        lines.append(line)
        return answer.get("result", {}).get("structuredContent") or {}

    await client.initialize(version, name="parity-client")
    project = await call("create_work_item", {"item_type": "project", "title": "Parity", "priority": "high"})
    task = await call("create_work_item", {"item_type": "task", "title": "Task ü ✓", "parent_id": project["id"]})
    other = await call("create_work_item", {"item_type": "task", "title": "Other", "parent_id": project["id"]})
    vendor = await call("create_vendor", {"name": "Acme Extractor"})
    enhancement = await call("create_enhancement", {"title": "Faster", "target_quarter": "2027-Q1"})
    config = await call("get_project_configuration", {})
    # Progress notices too: the seeded old items are archived in batches, one notice per batch.
    ident = next(counter)
    archive = {"name": "trigger_archiving", "arguments": {}, "_meta": {"progressToken": "parity"}}
    await client.send({"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": archive})
    line, answer = await client.answer(ident)
    lines.append(line)
    assert answer["result"]["structuredContent"]["archived"] == OLD_ITEMS
    valid: dict[str, dict[str, Any]] = {
        "update_work_item": {"id": task["id"], "version": 1, "status": "blocked", "metadata": {"note": 1.5}},
        "query_work_item": {"id": project["id"], "include_children": True},
        "list_work_items": {"parent_id": project["id"], "limit": 1},
        "add_dependency": {"work_item_id": task["id"], "depends_on_id": other["id"], "dependency_type": "depends_on"},
        "remove_dependency": {
            "work_item_id": task["id"],
            "depends_on_id": other["id"],
            "dependency_type": "depends_on",
        },
        "claim_work_item": {"id": other["id"], "lease_minutes": 10},
        "query_vendor_status": {"name": "acme extractor"},
        "update_vendor_status": {"name": "Acme Extractor", "version": 1, "status": "operational"},
        "record_deployment": {
            "metadata": {
                "pr_number": 7,
                "pr_title": "Ship",
                "commit_hash": "abc1234",
                "test_summary": {"passed": 3, "failed": 0, "skipped": 1},
                "constitutional_compliance": True,
            },
            "vendor_ids": [vendor["id"]],
        },
        "list_deployments": {"limit": 5},
        "update_enhancement": {"id": enhancement["id"], "version": 1, "status": "approved"},
        "list_enhancements": {},
        "update_project_configuration": {"version": config["version"], "git_branch": "main"},
        "generate_full_status": {},
        "trigger_archiving": {},
        "query_archived_work_items": {},
        "query_history": {"id": task["id"]},
        "sync_status": {},
        "list_conflicts": {},
        "resolve_conflict": {"id": str(uuid.UUID(int=0)), "resolution": "keep_local"},
    }
    deployment: dict[str, Any] = {}
    for name in TOOLS:
        if name in valid:
            result = await call(name, valid[name])
            if name == "record_deployment":
                deployment = result
    await call("query_deployment", {"id": deployment["id"]})
    await call("create_work_item", {"item_type": "task", "title": "Root task"})
    await call("create_vendor", {"name": "acme extractor"})  # duplicate
    await call("update_work_item", {"id": task["id"], "version": 1, "title": "stale"})  # version mismatch
    for name in TOOLS:  # invalid: an unknown argument, and a wrong type
        await call(name, {"no_such_argument": 1})
        await call(name, {"limit": "many", "id": 5, "version": "x"})
    await call("query_work_item", {"id": str(uuid.UUID(int=1))})  # not found
    await call("query_work_item", None)  # arguments omitted
    await call("no_such_tool", {})  # both paths: the SDK's -32602
    return lines + [line for line in client.lines if b'"method"' in line]  # the answers, then every notice


@pytest.fixture
def deterministic_ids(monkeypatch: pytest.MonkeyPatch):
    """Entity ids 00000000-…-000000000001, 2, … (reset per run) instead of random UUIDs."""

    def reset() -> None:
        counter = itertools.count(1)
        monkeypatch.setattr(store_entities, "new_id", lambda: str(uuid.UUID(int=next(counter))))

    return reset


@pytest.fixture
def counted_fast_answers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many answers the fast path encoded (proves the second run really took it)."""
    calls: list[int] = []
    real = fastpath.encode_result

    def counting(*args: Any) -> bytes:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(fastpath, "encode_result", counting)
    return calls


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
async def test_fast_path_and_sdk_path_answer_every_tool_identically(
    tmp_path: Path, deterministic_ids, counted_fast_answers: list[int], version: str
):
    pristine = tmp_path / "pristine.sqlite3"
    seed_archivable_items(pristine, OLD_ITEMS)
    async with Store(pristine, clock=lambda: NOW):
        pass
    work = tmp_path / "work" / "store.sqlite3"
    answers: dict[bool, list[bytes]] = {}
    for fast in (False, True):
        shutil.rmtree(work.parent, ignore_errors=True)
        work.parent.mkdir()
        shutil.copy(pristine, work)
        deterministic_ids()
        async with serving(work, fast_path=fast, clock=lambda: NOW) as server, raw_client(server.path) as client:
            server.service.started_at = NOW
            answers[fast] = await scenario(client, version)

    sdk, fast_answers = answers[False], answers[True]
    assert len(sdk) == len(fast_answers) >= 3 * len(TOOLS)
    progress = [json.loads(line) for line in sdk if b"notifications/progress" in line]
    assert [p["params"]["progress"] for p in progress] == [ARCHIVE_BATCH, 2 * ARCHIVE_BATCH, OLD_ITEMS]
    for sdk_line, fast_line in zip(sdk, fast_answers, strict=True):
        assert fast_line == sdk_line
    tool_calls = len(sdk) - len(progress) - 1  # the unknown tool is the SDK's on both runs
    assert len(counted_fast_answers) == tool_calls, "the fast run did not answer every tool call itself"
    errors = [json.loads(line)["result"] for line in sdk if json.loads(line).get("result", {}).get("isError")]
    assert len(errors) >= 2 * len(TOOLS), "the invalid calls were answered as tool errors"
    assert json.loads(sdk[-1 - len(progress)])["error"]["code"] == -32602
