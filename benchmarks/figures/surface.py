"""P10 and P11: what an MCP client sees first — the tools/list answer, and the bridge's start-up."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mcp_types as types

from benchmarks.core import Row, Stats, Target, latency_row, sample_sync
from benchmarks.harness import Env
from statusd.daemon.tools import TOOLS


def _initialize(ident: int = 1) -> bytes:
    params = {
        "protocolVersion": types.LATEST_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    }
    return json.dumps({"jsonrpc": "2.0", "id": ident, "method": "initialize", "params": params}).encode() + b"\n"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def _tools_list_line(socket_path: Path) -> str:
    """The daemon's raw tools/list answer, exactly as it crosses the socket."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=16 * 1024 * 1024)
    try:
        writer.write(_initialize())
        await reader.readline()
        writer.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        writer.write(b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n')
        await writer.drain()
        return (await reader.readline()).decode().rstrip("\n")
    finally:
        writer.close()
        await writer.wait_closed()


async def p10_tools_list(env: Env) -> list[Row]:
    ds = env.seed()
    line = await _tools_list_line(ds.socket_path)
    answer = json.loads(line)
    tools = answer["result"]["tools"]
    assert {t["name"] for t in tools} == set(TOOLS), "tools/list does not list the tool table"
    tokens = len(line) / 4
    # The same answer with the SDK's untrimmed pydantic schemas in place of ours.
    untrimmed = json.loads(line)
    for tool in untrimmed["result"]["tools"]:
        tool["inputSchema"] = TOOLS[tool["name"]].args.model_json_schema()
    base_tokens = len(_compact(untrimmed)) / 4
    row = Row(
        "P10",
        f"tools/list answer size ({len(tools)} tools)",
        1,
        "tokens",
        tokens,
        tokens,
        Target("≤5,000 tokens", p50_max=5000),
        base_tokens,
        base_tokens,
        "the same answer with each tool's untrimmed tool.args.model_json_schema() (what the SDK would "
        "generate for the same models)",
    )
    widest = sorted(tools, key=lambda t: -len(_compact(t)))[:3]
    row.notes.append(
        f"{len(line):,} chars on the wire (tokens = chars/4); largest tools: "
        + ", ".join(f"{t['name']} {len(_compact(t)) / 4:,.0f}" for t in widest)
    )
    return [row]


def _statusd_command() -> list[str]:
    exe = Path(sys.executable).with_name("statusd")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("statusd")
    return [found] if found else [sys.executable, "-m", "statusd.cli"]


def _spawn_bridge(command: list[str], socket_path: Path) -> int:
    """Nanoseconds from spawning the bridge to its first stdout line; its exit is not timed."""
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(
        [*command, "mcp", "--socket", str(socket_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(_initialize())
        proc.stdin.flush()
        first = proc.stdout.readline()
        elapsed = time.perf_counter_ns() - t0
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    if b'"result"' not in first:
        raise RuntimeError(f"statusd mcp answered {first[:200]!r}")
    return elapsed


def _spawn_floor(_: int) -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


async def p11_bridge_spawn(env: Env) -> list[Row]:
    """Time from spawning ``statusd mcp`` to its first answer (the initialize response)."""
    s = env.settings
    ds = env.seed()
    command = _statusd_command()

    def spawns() -> Stats:
        for _ in range(3):  # warm the page cache
            _spawn_bridge(command, ds.socket_path)
        return Stats([_spawn_bridge(command, ds.socket_path) for _ in range(s.spawns)])

    subject = await asyncio.to_thread(spawns)
    baseline = await asyncio.to_thread(sample_sync, _spawn_floor, s.spawns, 3)
    row = latency_row(
        "P11",
        "statusd mcp spawn → initialize answer",
        subject,
        Target("p50≤150 ms", p50_max=150.0),
        baseline,
        f"spawning `{Path(sys.executable).name} -c pass` to its exit (the interpreter floor)",
    )
    shown = " ".join([Path(command[0]).name, *command[1:]])
    row.notes.append(f"command: {shown} mcp --socket …")
    return [row]
