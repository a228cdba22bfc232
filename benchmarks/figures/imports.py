"""I1 (issue 11): import 10,000 beads records while other clients keep calling the daemon.

The import runs as one ``import_tasks`` call: all or nothing, committed in chunks
(``runner.ITEMS_PER_CHUNK`` items / ``EDGES_PER_CHUNK`` edges) with a run journal (docs/decisions.md,
"Imports commit in chunks"), so another client's write waits for one chunk, not for the import.
Meanwhile two readers (``query_work_item``, ``list_work_items``) and one writer (``update_work_item``
on an item outside the import) call in a loop; their latencies during the import are the figure.
A second row times ``statusd import`` with no daemon running: the CLI's own progress bar path.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.core import Row, Stats, Target, latency_row
from benchmarks.harness import Env, log
from statusd.sync.importers import runner

RECORDS = 10_000
SMOKE_RECORDS = 200


def beads_file(path: Path, n: int, seed: int = 11, prefix: str = "bench") -> Path:
    """``n`` records shaped like a busy beads project: epics with dotted children, blocks edges to
    earlier issues, labels, comments, a few tombstones."""
    rng = random.Random(seed)
    statuses = ["open"] * 5 + ["in_progress", "blocked", "closed", "closed", "deferred"]
    lines = []
    epics: list[str] = []
    for i in range(n):
        if i % 50 == 0:
            ident, kind = f"{prefix}-{i:05x}", "epic"
            epics.append(ident)
        else:
            ident, kind = f"{epics[-1]}.{i % 50}", rng.choice(["task", "bug", "feature", "chore"])
        status = "tombstone" if i % 500 == 499 else rng.choice(statuses)
        rec: dict[str, Any] = {
            "_type": "issue", "id": ident, "title": f"Issue {i}: {rng.choice(['fix', 'add', 'tidy'])} part {i % 97}",
            "description": "Steps to reproduce and context. " * rng.randint(1, 8), "status": status,
            "priority": rng.randint(0, 4), "issue_type": kind, "labels": rng.sample(["ui", "api", "db", "ops"], 2),
            "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-03T10:00:00Z",
        }  # fmt: skip
        if status == "closed":
            rec["closed_at"] = "2026-01-04T10:00:00Z"
        if status == "tombstone":
            rec["deleted_at"] = "2026-01-05T10:00:00Z"
        if i > 10 and rng.random() < 0.5:
            target = rng.randrange(max(0, i - 200), i)
            prev = (
                f"{prefix}-{target:05x}" if target % 50 == 0 else f"{prefix}-{target - target % 50:05x}.{target % 50}"
            )
            rec["dependencies"] = [{"issue_id": ident, "depends_on_id": prev, "type": "blocks"}]
        if rng.random() < 0.1:
            rec["comments"] = [{"id": i, "issue_id": ident, "author": "dev", "text": "Looked into it.",
                                "created_at": "2026-01-03T11:00:00Z"}]  # fmt: skip
        lines.append(json.dumps(rec))
    path.mkdir(parents=True, exist_ok=True)
    out = path / "issues.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out


async def i1_import(env: Env) -> list[Row]:
    # Smoke: enough records that the import outlasts a round trip, so the other clients' calls
    # really do overlap it (the rows below fail without a read and a write during the import).
    n = SMOKE_RECORDS if env.settings.smoke else 1_000 if env.settings.quick else RECORDS
    ds = env.imports()
    file = beads_file(env.root / "beads-import", n)
    solo = await _alone(ds, beads_file(env.root / "beads-solo", n, seed=12, prefix="solo"), n)
    item = ds.info.item_ids[0]
    reads: list[int] = []
    writes: list[int] = []
    done = asyncio.Event()
    connected: list[asyncio.Event] = []

    def ready() -> asyncio.Event:
        event = asyncio.Event()
        connected.append(event)
        return event

    async def reader(kind: str) -> None:
        up = ready()
        async with ds.client(f"bench-reader-{kind}") as c:
            up.set()
            while not done.is_set():
                t0 = time.perf_counter_ns()
                if kind == "query":
                    await c.call("query_work_item", id=item)
                else:
                    await c.call("list_work_items", limit=20)
                reads.append(time.perf_counter_ns() - t0)

    async def writer() -> None:
        up = ready()
        async with ds.client("bench-writer") as c:
            version = int((await c.call("query_work_item", id=item))["version"])
            up.set()
            i = 0
            while not done.is_set():
                t0 = time.perf_counter_ns()
                version = int((await c.call("update_work_item", id=item, version=version, title=f"I1 {i}"))["version"])
                writes.append(time.perf_counter_ns() - t0)
                i += 1

    async with ds.client("bench-importer") as c:
        others = [
            asyncio.create_task(reader("query")),
            asyncio.create_task(reader("list")),
            asyncio.create_task(writer()),
        ]
        await asyncio.sleep(0)  # let them start before waiting for their connections
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 30)
        t0 = time.perf_counter()
        report = await c.call("import_tasks", source="beads", path=str(file))
        took = time.perf_counter() - t0
        done.set()
        await asyncio.gather(*others)
    log(f"I1: imported {report['created']} items, skipped {report['skipped']} in {took:.2f}s")
    rows = [
        Row(
            "I1",
            f"import_tasks: {n:,} beads records through the daemon (chunked commits)",
            1,
            "s",
            took,
            took,
            Target("≤10 s", p50_max=10.0),
            notes=[
                f"created {report['created']}, skipped {report['skipped']} (tombstones), "
                f"dependencies {report['dependencies']['created']}"
            ],
        ),
        latency_row(
            "I1", "other clients' reads during the import", Stats(reads), Target("p99 ≤50", p99_max=50.0), None, "—"
        ),
        latency_row(
            "I1", "another client's writes during the import", Stats(writes), Target("p99 ≤50", p99_max=50.0), None, "—"
        ),
    ]
    # A latency row without samples would hide that nobody called during the import.
    rows[1].ok = bool(reads)
    rows[2].ok = bool(writes)
    rows[-1].notes.append(
        f"a write waits for the import chunk in progress ({runner.ITEMS_PER_CHUNK} items or "
        f"{runner.EDGES_PER_CHUNK} edges), not the import"
    )
    rows.append(solo)
    rows.append(await _offline(env, file, n))
    return rows


async def _alone(ds: Any, file: Path, n: int) -> Row:
    """The same import with nobody else calling: what the import costs by itself."""
    cpu0 = ds.cpu_seconds()
    async with ds.client("bench-importer") as c:
        t0 = time.perf_counter()
        report = await c.call("import_tasks", source="beads", path=str(file))
        took = time.perf_counter() - t0
    row = Row("I1", f"import_tasks: {n:,} beads records, no other clients", 1, "s", took, took,
              Target("≤10 s", p50_max=10.0), ok=report["created"] > 0)  # fmt: skip
    row.notes.append(f"daemon CPU {ds.cpu_seconds() - cpu0:.2f} s for the call (read, plan, chunks, journal prune)")
    return row


async def _offline(env: Env, file: Path, n: int) -> Row:
    """``statusd import`` with no daemon: the CLI opens the store and draws its own progress bar."""
    root = env.root / "offline-import"
    root.mkdir(parents=True, exist_ok=True)
    config = root / "statusd.toml"
    config.write_text(f'project = "offline"\n\n[socket]\npath = "{root / "none.sock"}"\n')
    cmd = [sys.executable, "-m", "statusd.cli", "import", "beads", str(file), "--config", str(config)]
    t0 = time.perf_counter()
    proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env={**os.environ})
    took = time.perf_counter() - t0
    row = Row("I1", f"statusd import beads ({n:,} records, no daemon: CLI progress bar)", 1, "s", took, took,
              Target("≤10 s", p50_max=10.0), ok=proc.returncode == 0)  # fmt: skip
    row.notes.append("includes interpreter start-up; " + (proc.stdout.splitlines() or [proc.stderr[-200:]])[0][:160])
    return row
