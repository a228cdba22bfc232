"""SPEC §12 R6, tool part: every tool fuzzed with valid-shaped and hostile input over the real socket.

One ``statusd run`` daemon serves the whole run. Each hypothesis example opens a fresh MCP session
(the official client over the Unix socket) and makes a few calls: arguments generated from the
tool's published input schema, with ids, versions, names and cursors taken from entities earlier
calls created (so many calls succeed and reach deep code paths), then optionally mutated into
hostile input. Some examples fire a burst of concurrent calls on one session; some speak raw
JSON-RPC to send what the official client cannot (non-object arguments, lone surrogates, nesting
deeper than the SDK's parser allows, lines that are not JSON at all).

Every call through the official client must get a success envelope or a structured tool error
with a known code — never ``internal``, never a protocol error, never a dropped or silent
connection. A raw request the MCP schema itself rejects may instead get a JSON-RPC error, but for
its own id (a null id only when not even the id can be read) and never an internal one. After each
example the store's invariants are checked read-only; after the run the daemon must still answer
and the SQLite file must pass ``integrity_check`` and ``foreign_key_check``.

Each tool in turn is the focus of EXAMPLES_PER_TOOL examples (16 each, about 15 s in all, in the
default suite); ``STATUSD_SOAK=1`` runs 560 per tool.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from fuzz_support import (
    ALLOWED_CODES,
    SEEDED,
    UNKNOWN_TOOL,
    Pool,
    RawSession,
    draw_call,
    draw_raw_line,
    resolve,
    seed_store,
    store_problems,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from daemon_support import DaemonProcess
from soak import SOAK, bounded
from statusd.daemon.tools import TOOLS

EXAMPLES_PER_TOOL = bounded(16, 28 * 20)
CALL_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(tmp_path_factory.mktemp("fuzz") / "project")
    seed_store(proc.store_path)
    proc.start()
    try:
        yield proc
        code = proc.stop()
        assert code == 0, f"daemon exited {code} on SIGTERM:\n{proc.log()[-4000:]}"
    finally:
        proc.cleanup()


def _log_tail(daemon: DaemonProcess) -> str:
    return daemon.log()[-6000:]


def check_result(daemon: DaemonProcess, tool: str, args: Any, result: types.CallToolResult, expect: str | None) -> None:
    """A success envelope or a structured tool error with a known code; ``expect`` pins the code."""
    where = f"{tool}({json.dumps(args, ensure_ascii=True, default=str)[:600]})"
    texts = [b.text for b in result.content if isinstance(b, types.TextContent)]
    assert len(texts) == 1, f"{where}: expected one text block, got {result.content!r}"
    payload = json.loads(texts[0])
    assert isinstance(payload, dict), f"{where}: non-object payload {texts[0][:300]}"
    if result.is_error:
        assert set(payload) == {"error"}, f"{where}: error payload {texts[0][:500]}"
        err = payload["error"]
        assert set(err) == {"code", "message", "details"}, f"{where}: error body {err!r}"
        assert isinstance(err["message"], str) and err["message"], where
        assert isinstance(err["details"], dict), where
        assert err["code"] in ALLOWED_CODES, f"{where}: error code {err['code']}: {err['message']}\n{_log_tail(daemon)}"
        if err["code"] == "validation_error":
            fields = err["details"].get("fields")
            assert isinstance(fields, list) and fields, f"{where}: validation_error without fields: {err!r}"
            assert all(isinstance(f, dict) and "field" in f and "message" in f for f in fields), err
        if expect is not None:
            assert err["code"] == expect, f"{where}: expected {expect}, got {err!r}"
        return
    assert expect is None, f"{where}: expected {expect}, got success {texts[0][:300]}"
    assert payload.get("success") is True, f"{where}: {texts[0][:300]}"
    assert payload.get("data_source") == "local_store", where
    assert isinstance(payload.get("warnings"), list), where
    if tool in TOOLS and TOOLS[tool].writes:
        assert payload.get("sync") in ("local_only", "queued", "confirmed"), where
        assert payload.get("wrote_to_store") is True and payload.get("wrote_to_markdown") in (True, False), where
    assert result.structured_content == payload, f"{where}: structured content differs from the text"


async def _one_call(daemon: DaemonProcess, session: Any, pool: Pool, call: tuple[str, Any, str | None]) -> None:
    tool, drawn, expect = call
    args = resolve(pool, tool, drawn)
    pool.calls[tool] += 1
    if expect == UNKNOWN_TOOL:
        with pytest.raises(MCPError) as refused:
            await session.call_tool(tool, args, read_timeout_seconds=CALL_TIMEOUT_S)
        assert refused.value.error.code == types.INVALID_PARAMS, f"{tool}: {refused.value!r}"
        return
    try:
        result = await session.call_tool(tool, args, read_timeout_seconds=CALL_TIMEOUT_S)
    except Exception as exc:
        where = f"{tool}({json.dumps(args, ensure_ascii=True, default=str)[:600]})"
        raise AssertionError(f"{where}: no tool result ({exc!r})\n{_log_tail(daemon)}") from exc
    check_result(daemon, tool, args, result, expect)
    if not result.is_error:
        pool.successes[tool] += 1
        pool.learn(tool, dict(result.structured_content or {}))


async def _example(daemon: DaemonProcess, pool: Pool, focus: str, data: st.DataObject) -> None:
    """One session: a call of the focus tool among a few calls of any tool, in sequence or at once."""
    mode = data.draw(st.sampled_from(["sequence"] * 6 + ["burst"] * 2 + ["raw"]), label="mode")
    if mode == "raw":
        async with RawSession.connect(daemon.socket_path, CALL_TIMEOUT_S) as raw:
            for _ in range(data.draw(st.integers(1, 3), label="raw lines")):
                line, request_id, null_ok = data.draw(draw_raw_line(focus), label="raw line")
                answer = await raw.send_line(line, request_id, null_ok)
                raw.check_answer(line, request_id, answer, _log_tail(daemon))
            assert (await raw.trivial_call())["success"] is True, "raw session stopped answering"
        return
    n = data.draw(st.integers(0, 5), label="other calls")
    calls = [data.draw(draw_call(), label="call") for _ in range(n)]
    calls.insert(data.draw(st.integers(0, n), label="focus at"), data.draw(draw_call(focus), label="focus call"))
    async with daemon.client(data.draw(st.sampled_from(["fuzz", "claude-code", "ü-client"]), label="client")) as c:
        if mode == "burst":
            await asyncio.gather(*(_one_call(daemon, c.session, pool, call) for call in calls))
        else:
            for call in calls:
                await _one_call(daemon, c.session, pool, call)
        # The session survived everything above: a trivial call still answers.
        assert (await c.call("get_project_configuration"))["success"] is True


@pytest.mark.soak
# Room for hypothesis to shrink a failure (a hung call costs CALL_TIMEOUT_S per attempt).
@pytest.mark.timeout(4 * 3600 if SOAK else 900)
def test_every_tool_survives_fuzzing(fuzz_daemon: DaemonProcess) -> None:
    pool = Pool.seeded()

    def fuzz_tool(focus: str) -> None:
        @settings(
            max_examples=EXAMPLES_PER_TOOL,
            deadline=None,
            derandomize=True,
            database=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def fuzz(data: st.DataObject) -> None:
            assert fuzz_daemon.alive(), f"daemon died:\n{_log_tail(fuzz_daemon)}"
            asyncio.run(_example(fuzz_daemon, pool, focus, data))
            problems = store_problems(fuzz_daemon.store_path)
            assert not problems, "store invariants broken:\n" + "\n".join(problems[:20])

        fuzz()

    # Creating tools first, so the others find entities to work on from their first example.
    for focus in sorted(TOOLS, key=lambda name: (not name.startswith(("create", "record")), name)):
        fuzz_tool(focus)

    # Valid-shaped input works: nearly every tool succeeded at least once (resolve_conflict has no
    # conflict to settle on a standalone daemon), and the hierarchy grew deep enough to matter.
    summary = f"calls {sorted(pool.calls.items())}\nsuccesses {sorted(pool.successes.items())}"
    never_ok = sorted(t for t in TOOLS if pool.successes[t] == 0)
    assert len(never_ok) <= max(2, len(TOOLS) // 10), f"tools that never succeeded: {never_ok}\n{summary}"
    assert pool.created_items >= 20 and pool.max_depth_seen >= 3, summary

    assert fuzz_daemon.alive(), f"daemon died:\n{_log_tail(fuzz_daemon)}"

    async def still_answers() -> dict[str, Any]:
        async with fuzz_daemon.client("after-fuzz") as c:
            return await c.call("sync_status")

    assert asyncio.run(still_answers())["success"] is True
    uri = f"file:{fuzz_daemon.store_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    assert not store_problems(fuzz_daemon.store_path)
    assert "Traceback" not in fuzz_daemon.log(), _log_tail(fuzz_daemon)


def test_store_checks_catch_broken_invariants(tmp_path: Path) -> None:
    """The invariant checker itself: a store with each kind of damage is reported."""
    path = tmp_path / "store.sqlite3"
    seed_store(path)
    assert store_problems(path) == []
    item, twin = SEEDED["work_item"]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE work_items SET parent_id = ?, depth = 3 WHERE id = ?", (twin, item))
        conn.execute("UPDATE work_items SET parent_id = ?, depth = 1 WHERE id = ?", (item, twin))
        conn.execute("UPDATE vendors SET version = version + 1 WHERE id = ?", (SEEDED["vendor"][0],))
        conn.execute(
            "INSERT INTO history(entity, entity_id, version, changes, actor, at, machine, via) "
            "VALUES ('enhancement', ?, 7, '{}', 'x', 'now', 'm', 'tool')",
            (SEEDED["enhancement"][0],),
        )
        conn.execute(
            "INSERT INTO dependencies (id, work_item_id, depends_on_id, dependency_type, version, created_at, "
            "created_by, updated_at, updated_by) VALUES (?, ?, ?, 'depends_on', 1, 'a', 'b', 'a', 'b')",
            (str(uuid.uuid4()), item, str(uuid.uuid4())),
        )
    conn.close()
    report = "\n".join(store_problems(path))
    for expected in ("depth", "cycle", "no history row for its current version", "history version", "dangling"):
        assert expected in report, f"{expected!r} not reported:\n{report}"
