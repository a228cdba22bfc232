"""P15: N replicated daemons (1, 2, 4, 8, 16; quick: 1, 2, 4; smoke: 1, 2) on one Postgres hub.

For each N, on a fresh hub schema, N ``statusd run`` daemons (each with its own store and socket)
are started and settled, then:

* **A→all visibility** — daemon 0 makes a confirmed ``update_work_item``; the clock stops when every
  one of the N stores (read-only SQLite probes) shows the new version. p50/p99 over the writes.
* **hub throughput** — four clients per daemon write (confirmed updates, each of its own item) for a
  fixed window; accepted operations per second counted at the hub (rows of ``changes``), the clock
  running until every outbox is empty.
* **Postgres connections** — sessions the daemons hold, counted in ``pg_stat_activity`` by the
  ``application_name`` their DSN sets (other users of the server are not counted).

The same-run baseline is N = 1: what one daemon gets from the same hub.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from benchmarks.core import NO_TARGET, Row, Stats, Target, sample_async
from benchmarks.figures.replication import StoreProbe, _online, _until
from benchmarks.harness import DaemonProcess, Env, log

P15_TARGET = Target("p99≤250 ms at N=16", p99_max=250.0)
WRITERS_PER_DAEMON = 4


async def _connections(dsn: str, app: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app))
    finally:
        await conn.close()


async def _fleet(env: Env, n: int) -> tuple[list[DaemonProcess], str, str]:
    schema = env.hub_schema(f"p15_{n}")
    app = f"statusd_p15_{n}_{schema[-6:]}"
    dsn = f"{env.dsn()}{'&' if '?' in env.dsn() else '?'}application_name={app}"
    fleet = [env.replicated(f"p15-{n}-{i}", schema, dsn=dsn) for i in range(n)]
    for d in fleet:
        env.start(d)
    await asyncio.gather(*(_online(d) for d in fleet))
    return fleet, schema, app


async def _visibility(fleet: list[DaemonProcess], samples: int, warmup: int, env: Env) -> Stats:
    probes = [StoreProbe(d.store_path) for d in fleet]
    try:
        async with fleet[0].client("p15-writer") as c:
            item = await c.call("create_work_item", item_type="task", title="P15 item")
            ident, version = str(item["id"]), int(item["version"])
            await _until(lambda: all(p.version(ident) >= version for p in probes), "the item to reach every store")

            async def call(i: int) -> None:
                nonlocal version
                out = await c.call("update_work_item", id=ident, version=version, title=f"P15 {i}")
                version = int(out["version"])
                want = version
                await _until(lambda: all(p.version(ident) >= want for p in probes), "an update to reach every store",
                             every=0.0005)  # fmt: skip

            return await sample_async(call, samples, warmup, env.settings)
    finally:
        for p in probes:
            p.close()


async def _throughput(fleet: list[DaemonProcess], env: Env, schema: str, seconds: float) -> float:
    hub = await asyncpg.connect(env.dsn())
    try:
        before = int(await hub.fetchval(f"SELECT count(*) FROM {schema}.changes"))
        stop = time.monotonic() + seconds

        async def writer(d: DaemonProcess, k: int) -> None:
            async with d.client("p15-load") as c:
                item = await c.call("create_work_item", item_type="task", title=f"load {d.root.name} {k}")
                version = int(item["version"])
                while time.monotonic() < stop:
                    out = await c.call("update_work_item", id=item["id"], version=version, title=f"v{version}")
                    version = int(out["version"])

        t0 = time.monotonic()
        await asyncio.gather(*(writer(d, k) for d in fleet for k in range(WRITERS_PER_DAEMON)))
        outboxes = [StoreProbe(d.store_path) for d in fleet]
        try:
            await _until(lambda: all(p.outbox() == 0 for p in outboxes), "every outbox to drain")
        finally:
            for p in outboxes:
                p.close()
        took = time.monotonic() - t0
        after = int(await hub.fetchval(f"SELECT count(*) FROM {schema}.changes"))
        return (after - before) / took
    finally:
        await hub.close()


async def p15_scale(env: Env) -> list[Row]:
    s = env.settings
    # Smoke (the test suite's run) proves the figure end to end with one and two daemons.
    sizes = [1, 2] if s.smoke else [1, 2, 4] if s.quick else [1, 2, 4, 8, 16]
    samples = 5 if s.smoke else 10 if s.quick else 50
    window = 1.0 if s.smoke else 3.0 if s.quick else 10.0
    rows: list[Row] = []
    base: Stats | None = None
    for n in sizes:
        fleet, schema, app = await _fleet(env, n)
        conns = await _connections(env.dsn(), app)
        vis = await _visibility(fleet, samples, 5, env)
        rate = await _throughput(fleet, env, schema, window)
        log(f"P15 N={n}: visibility p50 {vis.p50:.1f} p99 {vis.p99:.1f} ms, hub {rate:.0f} ops/s, {conns} connections")
        base = base or vis
        target = P15_TARGET if n == 16 else NO_TARGET
        row = Row("P15", f"N={n}: write on A visible in all {n} stores", vis.n, "ms", vis.p50, vis.p99, target,
                  base.p50, base.p99, "N = 1 on the same hub, same run")  # fmt: skip
        row.notes.append(f"N={n}: hub {rate:,.0f} confirmed ops/s ({WRITERS_PER_DAEMON} writers per daemon); "
                         f"{conns} Postgres connections ({conns / n:.1f} per daemon)")  # fmt: skip
        rows.append(row)
        for d in fleet:
            d.stop()
    return rows
