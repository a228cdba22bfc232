"""P9, P13, P14, P17: what running statusd for months costs — memory, idle CPU, CLI and start-up time, and
point reads while another client runs the heaviest report.

Same-run baselines: ``python -c pass`` beside the CLI, an interpreter importing only the standard
library beside daemon start-up, and P1 alone on the same daemon beside P17.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.core import Row, Stats, Target, latency_row, sample_async
from benchmarks.harness import Env, process_cpu_seconds

P13_TARGET = Target("≤150 ms", p50_max=150.0, p99_max=150.0)
P14_TARGET = Target("≤1 s", p50_max=1000.0)
P17_TARGET = Target("p99≤5 ms", p99_max=5.0)
P9_RSS = Target("≤100 MB", p50_max=100.0)
P9_CPU = Target("no busy polling (≤1%)", p50_max=1.0)

STATUSD = [sys.executable, "-m", "statusd.cli"]
REPORT_LOOP = """
import sys, time
from statusd.quick_client import QuickClient
deadline = time.monotonic() + float(sys.argv[2])
n = 0
with QuickClient(sys.argv[1], client_name="p17-reporter") as c:
    print("ready", flush=True)
    while time.monotonic() < deadline:
        c.call("generate_full_status", {})
        n += 1
print(n, flush=True)
"""


def _wall(argv: list[str], runs: int) -> Stats:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        out.append(time.perf_counter_ns() - t0)
    return Stats(out)


async def p13_cli(env: Env) -> list[Row]:
    s = env.settings
    ds = env.seed()
    config = str(ds.daemon.config_path)
    runs = max(5, s.spawns)
    base = await asyncio.to_thread(_wall, [sys.executable, "-c", "pass"], runs)
    rows = []
    item = ds.info.item_ids[0]
    for args in (["status"], ["ready"], ["show", item], ["call", "query_vendor_status", '{"name": "vendor_1"}']):
        stats = await asyncio.to_thread(_wall, [*STATUSD, *args, "--config", config], runs)
        rows.append(latency_row("P13", f"statusd {args[0]} wall time (seed data)", stats, P13_TARGET, base,
                                "python -c pass, same interpreter, same run"))  # fmt: skip
    return rows


def _ready_times(runs: int) -> tuple[Stats, Stats]:
    root = Path(tempfile.mkdtemp(prefix="p14-", dir="/tmp"))
    (root / "statusd.toml").write_text(f'project = "p14"\n[socket]\npath = "{root}/d.sock"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(root / "notify"))
    notify.settimeout(30)
    ready, answer = [], []
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            with open(root / "daemon.log", "ab") as log:
                env = {**os.environ, "NOTIFY_SOCKET": str(root / "notify")}
                argv = [*STATUSD, "run", "--config", str(root / "statusd.toml")]
                proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
            try:
                while b"READY=1" not in notify.recv(4096):
                    pass
                ready.append(time.perf_counter_ns() - t0)
                from statusd.quick_client import QuickClient

                with QuickClient(root / "d.sock") as c:
                    c.call("sync_status", {})
                answer.append(time.perf_counter_ns() - t0)
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        notify.close()
    return Stats(ready), Stats(answer)


async def p14_startup(env: Env) -> list[Row]:
    runs = max(3, env.settings.spawns // 3)
    base = await asyncio.to_thread(_wall, [sys.executable, "-c", "import asyncio, sqlite3, json, logging"], runs)
    ready, answer = await asyncio.to_thread(_ready_times, runs)
    what = "statusd run → READY=1 (store open, socket listening), empty store"
    baseline = "python -c 'import asyncio, sqlite3, json, logging' (interpreter start), same run"
    row = latency_row("P14", what, ready, P14_TARGET, base, baseline)
    row.notes.append(f"start → first tool answer (MCP SDK loaded after READY): p50 {answer.p50:.0f} ms, "
                     f"p99 {answer.p99:.0f} ms")  # fmt: skip
    return [row]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def p9_memory_idle(env: Env) -> list[Row]:
    ds = env.large()
    assert ds.daemon.proc is not None
    pid = ds.daemon.proc.pid
    async with ds.client() as c:  # touch the data the way clients do, so caches are warm
        await c.call("generate_full_status")
        await c.call("list_work_items", limit=500)
    rss = _rss_mb(pid)
    window = 2.0 if env.settings.smoke else 10.0 if env.settings.quick else 60.0
    c0, t0 = process_cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)  # measuring idleness: nothing to wait for but the clock
    cpu_pct = (process_cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
    return [
        Row("P9", f"daemon RSS at {ds.info.items:,} items (after a report and a list)", 1, "MB", rss, rss, P9_RSS),
        Row("P9", f"daemon idle CPU over {window:.0f} s", 1, "%", cpu_pct, cpu_pct, P9_CPU),
    ]


async def p17_reads_under_report_load(env: Env) -> list[Row]:
    s = env.settings
    ds = env.large()
    names = [f"vendor_{i}" for i in range(45)]
    async with ds.client("p17-point-reads") as c:

        async def call(i: int) -> object:
            return await c.call("query_vendor_status", name=names[i % len(names)])

        alone = await sample_async(call, s.samples, s.warmup, s)
        duration = s.budget_s * 2 + 30
        reporter = await asyncio.create_subprocess_exec(
            sys.executable, "-c", REPORT_LOOP, str(ds.socket_path), str(duration), stdout=asyncio.subprocess.PIPE
        )
        assert reporter.stdout is not None
        assert (await reporter.stdout.readline()).strip() == b"ready"
        loaded = await sample_async(call, s.samples, s.warmup, s)
        reporter.terminate()
        await reporter.wait()
    row = latency_row(
        "P17", f"query_vendor_status while another process loops generate_full_status ({ds.info.items:,} items)",
        loaded, P17_TARGET, alone, "the same call on the same daemon with no other client, same run",
    )  # fmt: skip
    return [row]
