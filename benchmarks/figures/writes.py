"""P4 and P5: writes over the socket, alone and under concurrent mixed load, beside Postgres.

P4's confirmed-by-Postgres row is measured in ``replication.py``."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks import pg
from benchmarks.core import Row, Stats, Target, latency_row, percentile, sample_async, sample_with_cpu
from benchmarks.figures import replication
from benchmarks.harness import Dataset, Env
from statusd.client import StatusdClient, VersionMismatchError
from statusd.models import now_iso

MAX_RETRIES = 20
WINDOW_S = 0.2
DEADLOCK_GRACE_S = 30.0


async def _versions(c: StatusdClient, ids: list[str]) -> dict[str, int]:
    return {i: int((await c.call("query_work_item", id=i, include_dependencies=False))["version"]) for i in ids}


async def _live_count(c: StatusdClient) -> int:
    return int((await c.call("list_work_items", include_deleted=True, limit=1))["total_count"])


async def p4_update(env: Env) -> list[Row]:
    s = env.settings
    ds = env.seed()
    ids = ds.info.item_ids[:10]
    async with ds.client() as c:
        versions = await _versions(c, ids)

        async def call(i: int) -> object:
            ident = ids[i % len(ids)]
            out = await c.call("update_work_item", id=ident, version=versions[ident], title=f"P4 update {i}")
            versions[ident] = int(out["version"])
            return out

        subject, cpu = await sample_with_cpu(call, s.samples, s.warmup, s, ds.cpu_seconds)
    pool = await ds.pool()
    async with pool.acquire() as conn:
        pg_versions = {i: int(await conn.fetchval(pg.VERSION, i)) for i in ids}

    async def base(i: int) -> object:
        ident = ids[i % len(ids)]
        async with pool.acquire() as conn:
            new = await pg.update_title(conn, ident, pg_versions[ident], f"P4 update {i}", now_iso())
        assert new is not None
        pg_versions[ident] = new
        return new

    async def baseline() -> Stats:
        return await sample_async(base, s.samples, s.warmup, s)

    text = (
        "asyncpg UPDATE … WHERE id=$1 AND version=$2 RETURNING version per call (pooled connection, "
        "synchronous_commit on)"
    )
    row = latency_row(
        "P4",
        "update_work_item, queued/local (synchronous=FULL)",
        subject,
        Target("p50≤2 ms", p50_max=2.0),
        await baseline(),
        text,
    )
    row.notes.append(cpu)
    # The confirmed variant's baseline is measured again right after it, on the same table.
    return [row, await replication.p4_confirmed(env, baseline, text + "; measured right after the confirmed run")]


# --- P5 ----------------------------------------------------------------------------------------


@dataclass
class MixResult:
    done_ns: list[int] = field(default_factory=list)
    latency_ns: list[int] = field(default_factory=list)
    reads: int = 0
    writes: int = 0
    retries: int = 0
    gave_up: int = 0


Op = Callable[[str, int], Awaitable[None]]
Write = Callable[[str, int], Awaitable[bool]]


class Ops:
    """A read (the item with its chain and dependencies) and a version-checked title write with
    re-read on mismatch, over one connection of either kind."""

    def __init__(self, versions: dict[str, int], result: MixResult) -> None:
        self.versions = versions
        self.result = result

    async def run(self, rng: random.Random, ids: list[str], read: Op, write: Write) -> None:
        ident = rng.choice(ids)
        t0 = time.perf_counter_ns()
        if rng.random() < 0.7:
            await read(ident, 0)
            self.result.reads += 1
        else:
            for attempt in range(MAX_RETRIES):
                if await write(ident, attempt):
                    self.result.writes += 1
                    break
                self.result.retries += 1
            else:
                self.result.gave_up += 1
        t1 = time.perf_counter_ns()
        self.result.done_ns.append(t1)
        self.result.latency_ns.append(t1 - t0)


def statusd_ops(c: StatusdClient, ops: Ops) -> tuple[Op, Write]:
    async def read(ident: str, _: int) -> None:
        await c.call("query_work_item", id=ident)

    async def write(ident: str, attempt: int) -> bool:
        try:
            title = f"P5 {os.urandom(4).hex()}"
            out = await c.call("update_work_item", id=ident, version=ops.versions[ident], title=title)
        except VersionMismatchError as exc:
            got = await c.call("query_work_item", id=ident, include_dependencies=False)
            ops.versions[ident] = max(int(got["version"]), exc.actual_version or 0)
            return False
        ops.versions[ident] = int(out["version"])
        return True

    return read, write


class Leases:
    """Connections handed out one operation at a time (an asyncpg connection runs one query at once)."""

    def __init__(self, conns: list[Any]) -> None:
        self._free: asyncio.Queue[Any] = asyncio.Queue()
        for conn in conns:
            self._free.put_nowait(conn)

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Any]:
        conn = await self._free.get()
        try:
            yield conn
        finally:
            self._free.put_nowait(conn)


def pg_ops(leases: Leases, ops: Ops) -> tuple[Op, Write]:
    async def read(ident: str, _: int) -> None:
        async with leases.lease() as conn:
            await pg.query_item(conn, ident)

    async def write(ident: str, attempt: int) -> bool:
        async with leases.lease() as conn:
            new = await pg.update_title(conn, ident, ops.versions[ident], f"P5 {os.urandom(4).hex()}", now_iso())
            if new is None:
                ops.versions[ident] = int(await conn.fetchval(pg.VERSION, ident))
                return False
        ops.versions[ident] = new
        return True

    return read, write


@dataclass
class MixRun:
    result: MixResult
    start_ns: int
    elapsed: float
    finished: bool
    problems: list[str] = field(default_factory=list)
    daemon_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.finished and not any(p.startswith(("LOST", "DEADLOCK")) for p in self.problems)

    def rates(self, seconds: float) -> list[float]:
        """Completed operations per window of ``WINDOW_S``, sorted."""
        windows = max(1, int(seconds / WINDOW_S))
        counts = [0] * windows
        for t in self.result.done_ns:
            k = int((t - self.start_ns) / (WINDOW_S * 1e9))
            if 0 <= k < windows:
                counts[k] += 1
        return sorted(c / WINDOW_S for c in counts)


async def _drive(
    conns: list[tuple[Op, Write]],
    ops: Ops,
    ids: list[str],
    *,
    seconds: float | None = None,
    total_ops: int | None = None,
) -> MixRun:
    """Run the mix on every connection: for ``seconds``, or ``total_ops`` operations all at once."""
    rng = random.Random(5)
    start = time.perf_counter_ns()
    if seconds is not None:
        deadline = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            read, write = conns[k]
            wrng = random.Random(k)
            while time.perf_counter() < deadline:
                await ops.run(wrng, ids, read, write)

        tasks = [worker(k) for k in range(len(conns))]
        limit = seconds + DEADLOCK_GRACE_S
    else:
        assert total_ops is not None
        tasks = [ops.run(rng, ids, *rng.choice(conns)) for _ in range(total_ops)]
        limit = DEADLOCK_GRACE_S
    finished = True
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), limit)
    except TimeoutError:
        finished = False
    run = MixRun(ops.result, start, (time.perf_counter_ns() - start) / 1e9, finished)
    if not finished:
        run.problems.append("DEADLOCK: not every task finished within the grace period")
    return run


async def _mix_statusd(ds: Dataset, ids: list[str], clients: int, **how: Any) -> MixRun:
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(ds.client(f"bench-{k}")) for k in range(clients)]
        before = await _versions(conns[0], ids)
        count_before = await _live_count(conns[0])
        ops = Ops(dict(before), MixResult())
        cpu0, own0 = ds.cpu_seconds(), time.process_time()
        run = await _drive([statusd_ops(c, ops) for c in conns], ops, ids, **how)
        cpu, own = ds.cpu_seconds() - cpu0, time.process_time() - own0
        if run.finished:
            after = await _versions(conns[0], ids)
            applied = sum(after[i] - before[i] for i in ids)
            if applied != run.result.writes:
                run.problems.append(f"LOST/EXTRA WRITES: {run.result.writes} acknowledged, {applied} applied")
            if await _live_count(conns[0]) != count_before:
                run.problems.append("LOST ROWS: the item count changed")
        run.daemon_cpu_s, run.client_cpu_s = cpu, own
    return run


def _cpu_note(runs: list[MixRun]) -> str:
    wall = sum(r.elapsed for r in runs)
    daemon = sum(r.daemon_cpu_s for r in runs)
    client = sum(r.client_cpu_s for r in runs)
    writes = sum(r.result.writes for r in runs)
    retries = sum(r.result.retries for r in runs)
    return (
        f"CPU while running: daemon {100 * daemon / wall:.0f}%, benchmark (client) process {100 * client / wall:.0f}% "
        f"of one core (2 cores = 200%); {writes / len(runs):.0f} writes and {retries / len(runs):.0f} "
        "version_mismatch re-reads per run"
    )


async def _mix_pg(ds: Dataset, ids: list[str], clients: int, **how: Any) -> MixRun:
    pool = await ds.pool()
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(pool.acquire()) for _ in range(clients)]
        versions = {i: int(await conns[0].fetchval(pg.VERSION, i)) for i in ids}
        ops = Ops(versions, MixResult())
        if "seconds" in how:  # one connection per worker, as with the daemon's clients
            pairs = [pg_ops(Leases([c]), ops) for c in conns]
        else:  # operations share the connections, waiting for a free one
            shared = Leases(conns)
            pairs = [pg_ops(shared, ops)] * len(conns)
        return await _drive(pairs, ops, ids, **how)


async def p5_concurrency(env: Env) -> list[Row]:
    s = env.settings
    ds = env.seed()
    ids = ds.info.item_ids
    rows = []

    run = await _mix_statusd(ds, ids, 20, seconds=s.mix_seconds)
    base = await _mix_pg(ds, ids, 20, seconds=s.mix_seconds)
    rates, brates = run.rates(s.mix_seconds), base.rates(s.mix_seconds)
    res, bres = run.result, base.result
    row = Row(
        "P5",
        f"20 clients, 70/30 mix on {len(ids)} items, {s.mix_seconds:g} s",
        len(res.done_ns),
        "ops/s",
        percentile(rates, 50),
        percentile(rates, 1),
        Target("≥1,000 ops/s", rate_min=1000),
        percentile(brates, 50),
        percentile(brates, 1),
        "the same mix over 20 asyncpg connections (read = row + CTE chain + dependencies; write = "
        "UPDATE … AND version=$2, re-read on 0 rows)",
        ok=run.ok,
    )
    lat = Stats(res.latency_ns)
    row.notes += [
        f"{len(res.done_ns) / run.elapsed:,.0f} ops/s overall ({res.reads} reads, {res.writes} writes, "
        f"{res.retries} version_mismatch re-reads, {res.gave_up} gave up); per-op latency p50 {lat.p50:.2f} ms "
        f"p99 {lat.p99:.2f} ms; p50/p99 columns: median / 1st-percentile rate over {WINDOW_S:g} s windows",
        *run.problems,
        _cpu_note([run]),
        f"baseline: {len(bres.done_ns) / base.elapsed:,.0f} ops/s overall, {bres.retries} re-reads"
        + ("" if base.finished else ", DID NOT FINISH"),
    ]
    rows.append(row)

    seed_ids = ids[:10]
    walls, bwalls, problems, runs = [], [], set(), []
    ok = True
    for _ in range(s.seed_mix_repeats):
        run = await _mix_statusd(ds, seed_ids, 3, total_ops=100)
        runs.append(run)
        walls.append(int(run.elapsed * 1e9))
        ok = ok and run.ok
        problems.update(p for p in run.problems if p.startswith(("LOST", "DEADLOCK")))
        base = await _mix_pg(ds, seed_ids, 3, total_ops=100)
        bwalls.append(int(base.elapsed * 1e9))
    row = latency_row(
        "P5",
        "seed's 100 concurrent mixed ops (3 clients, 10 items), wall",
        Stats(walls),
        Target("<200 ms", p50_max=200.0, p99_max=200.0),
        Stats(bwalls),
        "the same 100 ops over 3 asyncpg connections",
    )
    row.ok = ok
    row.notes += [*sorted(problems), _cpu_note(runs)]
    rows.append(row)
    return rows
