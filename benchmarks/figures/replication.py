"""P4 confirmed, P6, P7, P12: replicated daemons against a Postgres hub on loopback.

Every figure gets its own hub schema and its own ``statusd run`` daemons (``Env.replicated``); the
figures that need the hub slow or unreachable put the daemon's DSN through a TCP proxy
(``tests/sync/tcp_proxy.py``: ``reset`` refuses every connection, ``delay`` holds every chunk),
never touching the shared server itself.

* **P4 confirmed** — ``update_work_item`` on a daemon in ``write_mode = "confirmed"`` (the default):
  the call returns once Postgres has judged the write. Every answer must say ``sync: confirmed``.
* **P6 replay** — writes queued while the hub was unreachable (written into the stopped daemon's
  store through ``Store(replicated=True)``, so each one has its outbox operation exactly as a tool
  call would), then the daemon starts with the proxy refusing connections; the proxy opens and the
  clock runs from the daemon's first accepted connection to an empty outbox.
* **P6 bootstrap** — ``Replicator.bootstrap()`` into an empty store from a hub holding the large
  dataset's entities (written into ``entities`` in the hub's format, as ``apply_op`` stores them).
* **P7** — a write on daemon A (a confirmed ``update_work_item`` over A's socket) until daemon B's
  SQLite file (read-only) shows the new version.
* **P12** — P1's ``query_vendor_status`` on a replicated daemon whose Postgres is behind a proxy
  adding 50 ms to every round trip.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from benchmarks import datasets, pg
from benchmarks.core import Row, Stats, Target, latency_row, sample_async, sample_with_cpu
from benchmarks.figures.reads import P1_TARGET, _lookups
from benchmarks.harness import DaemonProcess, Env, log, process_cpu_seconds
from statusd.client import StatusdClient
from statusd.models import CreateWorkItemArgs, UpdateWorkItemArgs
from statusd.store import Store, WriteContext, workitems
from statusd.store.entities import DERIVED, ENTITIES
from statusd.sync import pg_schema
from statusd.sync.replicator import Replicator

T = TypeVar("T")

P6_REPLAY_TARGET = Target("≥2,000 ops/s", rate_min=2000)
P6_BOOT_TARGET = Target("≥20,000 rows/s", rate_min=20000)
P7_TARGET = Target("p50≤50 p99≤250 ms", p50_max=50.0, p99_max=250.0)
PROXY_DELAY_MS = 25  # per direction: +50 ms per round trip
SETTLE_S = 60.0  # ceiling for any wait on the daemons; nothing waits a fixed time
REPLAY_S = 300.0
HUB_MACHINE = "bench-hub"
PROJECT = "test"  # the project DaemonProcess configures


# --- helpers ---------------------------------------------------------------------------------


async def _until(probe: Callable[[], Awaitable[T] | T], what: str, within: float = SETTLE_S, every: float = 0.01) -> T:
    deadline = time.monotonic() + within
    while True:
        got = probe()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within:g} s waiting for {what} (last: {got!r})")
        await asyncio.sleep(every)


async def _sync_status(d: DaemonProcess) -> dict[str, Any]:
    async with d.client("bench-probe") as c:
        return await c.call("sync_status")


async def _online(d: DaemonProcess) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await _sync_status(d)
        return status if (status.get("postgres") or {}).get("reachable") else None

    return await _until(probe, f"{d.root.name} to reach Postgres", every=0.02)


async def _settled(d: DaemonProcess) -> dict[str, Any]:
    """Online with an empty outbox."""

    async def probe() -> dict[str, Any] | None:
        status = await _sync_status(d)
        online = (status.get("postgres") or {}).get("reachable")
        return status if online and status["pending_outbox"] == 0 else None

    return await _until(probe, f"{d.root.name} to push its outbox", every=0.02)


class StoreProbe:
    """A read-only connection to a running daemon's store (each statement sees the latest commit)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)

    def outbox(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def version(self, ident: str) -> int:
        row = self.conn.execute("SELECT version FROM work_items WHERE id = ?", (ident,)).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        self.conn.close()


async def _hub_versions(conn: asyncpg.Connection, schema: str, ids: list[str]) -> dict[str, int]:
    rows = await conn.fetch(f"SELECT id, version FROM {schema}.entities WHERE id = ANY($1)", ids)
    return {r[0]: int(r[1]) for r in rows}


def _stop(d: DaemonProcess) -> None:
    code = d.stop()
    if code != 0:
        raise RuntimeError(f"daemon {d.root.name} exited {code} on SIGTERM:\n{d.log()[-2000:]}")


def _cpu(d: DaemonProcess) -> Callable[[], float]:
    assert d.proc is not None
    pid = d.proc.pid
    return lambda: process_cpu_seconds(pid)


def _write_store(path: Path, fn: Callable[..., T], *args: Any) -> T:
    """Run one write function on a (stopped) daemon's store in replicated mode: every change queues its op."""
    store = Store(path, machine="bench", replicated=True, project=PROJECT)
    store.open()
    try:
        return store.write_sync(fn, WriteContext(actor="bench"), *args)
    finally:
        store.close()


def rate_row(
    figure: str, what: str, n: int, rates: list[float], target: Target, base: list[float], baseline: str
) -> Row:
    """A throughput row over whole runs: p50 = the median run's rate, p99 = the slowest run's."""
    return Row(
        figure,
        what,
        n,
        "ops/s",
        statistics.median(rates),
        min(rates),
        target,
        statistics.median(base),
        min(base),
        baseline,
    )


# --- P4 confirmed ----------------------------------------------------------------------------


async def p4_confirmed(env: Env, baseline: Callable[[], Awaitable[Stats]], baseline_text: str) -> Row:
    s = env.settings
    schema = env.hub_schema("p4")
    d = env.start(env.replicated("p4-confirmed", schema))
    await _online(d)
    syncs: Counter[str] = Counter()
    async with d.client("bench") as c:
        items = [await c.call("create_work_item", item_type="task", title=f"P4 confirmed {k}") for k in range(10)]
        syncs.update(str(it.get("sync")) for it in items)
        versions = {str(it["id"]): int(it["version"]) for it in items}
        ids = list(versions)

        async def call(i: int) -> object:
            ident = ids[i % len(ids)]
            out = await c.call("update_work_item", id=ident, version=versions[ident], title=f"P4 confirmed {i}")
            versions[ident] = int(out["version"])
            syncs[str(out.get("sync"))] += 1
            return out

        subject, cpu = await sample_with_cpu(call, s.samples, s.warmup, s, _cpu(d))
    conn = await asyncpg.connect(env.dsn())
    try:
        hub = await _hub_versions(conn, schema, ids)
    finally:
        await conn.close()
    base = await baseline()
    row = latency_row(
        "P4",
        "update_work_item, confirmed by Postgres on loopback",
        subject,
        Target("p50≤5 ms", p50_max=5.0),
        base,
        baseline_text,
    )
    confirmed = syncs.get("confirmed", 0)
    row.notes.append(cpu)
    row.notes.append(
        f"{confirmed:,} of {sum(syncs.values()):,} writes (creates, warm-up, samples) answered sync=confirmed"
        + ("" if confirmed == sum(syncs.values()) else f"; others: {dict(syncs)}")
    )
    lost = [i for i in ids if hub.get(i) != versions[i]]
    if confirmed != sum(syncs.values()) or lost:
        row.ok = False
    if lost:
        row.notes.append(f"LOST: {len(lost)} items' hub version differs from the last confirmed version")
    _stop(d)
    return row


# --- P6 replay -------------------------------------------------------------------------------


def _create_items(conn: sqlite3.Connection, ctx: WriteContext, n: int) -> list[str]:
    return [
        str(workitems.create(conn, ctx, CreateWorkItemArgs(item_type="task", title=f"P6 item {k}"))["id"])
        for k in range(n)
    ]


def _queue_updates(
    conn: sqlite3.Connection, ctx: WriteContext, ids: list[str], versions: dict[str, int], count: int, tag: str
) -> int:
    """``count`` title updates round-robin over ``ids``; returns how many outbox ops they queued."""
    for i in range(count):
        ident = ids[i % len(ids)]
        row = workitems.update(conn, ctx, UpdateWorkItemArgs(id=ident, version=versions[ident], title=f"{tag} {i}"))
        versions[ident] = int(row["version"])
    return len(ctx.op_ids)


BASE_UPDATE = (
    "UPDATE {s}.entities SET data = data || jsonb_build_object('title', $3::text), version = version + 1, "
    "updated_at = $4, updated_by = $5 WHERE id = $1 AND version = $2"
)


async def p6_replay(env: Env) -> Row:
    s = env.settings
    n = s.replay_writes
    n_items = max(1, n // 10)
    schema = env.hub_schema("p6")
    proxy = env.proxy()
    d = env.replicated("p6-replay", schema, dsn=proxy.dsn_for(env.dsn()))
    ids = _write_store(d.store_path, _create_items, n_items)
    versions = dict.fromkeys(ids, 1)
    env.start(d)
    await _settled(d)  # the hub has the items; from here on every queued op is an update
    _stop(d)

    base_schema = env.hub_schema("p6base")
    conn = await asyncpg.connect(env.dsn())
    await conn.execute(f"CREATE TABLE {base_schema}.entities (LIKE {schema}.entities INCLUDING ALL)")
    await conn.execute(f"INSERT INTO {base_schema}.entities SELECT * FROM {schema}.entities")
    base_versions = dict(versions)

    rates: list[float] = []
    base_rates: list[float] = []
    notes: list[str] = []
    ok = True
    try:
        for run in range(s.replication_runs):
            tag = f"P6 replay {run}"
            t0 = time.perf_counter()
            queued = _write_store(d.store_path, _queue_updates, ids, versions, n, tag)
            seeded = time.perf_counter() - t0
            if queued != n:
                raise RuntimeError(f"{n} updates queued {queued} outbox operations")
            proxy.set_mode("reset")
            tried = proxy.accepted
            env.start(d)
            await _until(lambda tried=tried: proxy.accepted > tried, "the daemon's first refused connection")
            status = await _sync_status(d)
            assert not status["postgres"]["reachable"] and status["pending_outbox"] == n, status
            probe = StoreProbe(d.store_path)
            tried = proxy.accepted
            proxy.set_mode("pass")
            t_open = time.perf_counter()
            await _until(lambda tried=tried: proxy.accepted > tried, "the daemon to reconnect", every=0.0005)
            t_reconnect = time.perf_counter()
            trace = [(t_reconnect, n)]
            while trace[-1][1]:
                if time.perf_counter() - t_reconnect > REPLAY_S:
                    raise RuntimeError(f"outbox not empty {REPLAY_S:g} s after reconnecting ({trace[-1][1]} left)")
                await asyncio.sleep(0.005)
                trace.append((time.perf_counter(), probe.outbox()))
            elapsed = trace[-1][0] - t_reconnect
            probe.close()
            rates.append(n / elapsed)
            first_push = next((t for t, left in trace if left < n), trace[-1][0]) - t_reconnect
            notes.append(
                f"run {run + 1}: {n:,} ops replayed in {elapsed:.2f} s ({rates[-1]:,.0f} ops/s); first op "
                f"acknowledged {first_push * 1e3:.0f} ms after reconnecting; the daemon retried "
                f"{(t_reconnect - t_open) * 1e3:.0f} ms after the hub came back; queueing them took {seeded:.1f} s"
            )
            _stop(d)

            rows = []
            for i in range(n):
                ident = ids[i % len(ids)]
                rows.append((ident, base_versions[ident], f"{tag} {i}", "2025-01-01T00:00:00Z", "bench"))
                base_versions[ident] += 1
            t0 = time.perf_counter()
            async with conn.transaction():
                await conn.executemany(BASE_UPDATE.format(s=base_schema), rows)
            base_rates.append(n / (time.perf_counter() - t0))
        hub = await _hub_versions(conn, schema, ids)
        twice = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT op_id FROM {schema}.changes WHERE op_id IS NOT NULL "
            "GROUP BY op_id HAVING count(*) > 1) x"
        )
        base_sum = await conn.fetchval(f"SELECT sum(version) FROM {base_schema}.entities WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    lost = [i for i in ids if hub.get(i) != versions[i]]
    if lost or twice:
        ok = False
        notes.append(f"LOST/EXTRA: {len(lost)} items off their expected hub version, {twice} ops applied twice")
    if base_sum != sum(base_versions.values()):
        notes.append("baseline: some UPDATEs matched no row")
    row = rate_row(
        "P6",
        f"replay of {n:,} queued writes after an outage ({n_items:,} items)",
        n * len(rates),
        rates,
        P6_REPLAY_TARGET,
        base_rates,
        f"asyncpg executemany of the same {n:,} compare-and-set UPDATEs (jsonb title, version+1) in one "
        "transaction on a copy of the hub's entities table (no changes/ops rows, no verdicts back)",
    )
    row.ok = ok
    row.notes.append(
        "p50/p99 columns: median / slowest run; rate = ops / (daemon's first accepted connection → empty outbox)"
    )
    row.notes += notes
    return row


# --- P6 bootstrap ----------------------------------------------------------------------------


def _hub_records(store_path: Path) -> list[tuple[Any, ...]]:
    """Every entity of a store as a hub ``entities`` row, the way ``apply_op`` stores a create."""
    src = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    out = []
    try:
        for entity in ENTITIES.values():
            for values in src.execute(entity.select):
                row = dict(zip(entity.columns, values, strict=True))
                data: dict[str, Any] = {"created_at": row["created_at"], "created_by": row["created_by"]}
                for name in entity.fields:
                    value = row[name]
                    if name in DERIVED or value is None:
                        continue
                    data[name] = json.loads(value) if name in entity.json_fields else value
                record = (row["id"], entity.name, row["version"], json.dumps(data), row["updated_at"])
                out.append((*record, row["updated_by"], HUB_MACHINE))
    finally:
        src.close()
    return out


async def _bootstrap_once(env: Env, schema: str, path: Path) -> tuple[int, float, int]:
    """Bootstrap an empty store; return (entities copied, seconds, work items in the store)."""
    store = Store(path, machine="bench-new", replicated=True, project=PROJECT)
    store.open()
    try:
        rep = Replicator(store, dsn=env.dsn(), password=None, schema=schema)
        await rep.connect()
        try:
            t0 = time.perf_counter()
            copied = await rep.bootstrap()
            elapsed = time.perf_counter() - t0
        finally:
            await rep.close()
        items = int(store.reader.execute("SELECT COUNT(*) FROM work_items").fetchone()[0])
    finally:
        store.close()
    return copied, elapsed, items


def _cli_bootstrap(env: Env, schema: str, root: Path) -> str:
    """``statusd sync --bootstrap`` end to end (process start, connect, copy), for a note."""
    root.mkdir(parents=True)
    config = root / "statusd.toml"
    config.write_text(
        f'project = "{PROJECT}"\n\n[store]\npath = "{root / "store.sqlite3"}"\n'
        f'\n[postgres]\ndsn = "{env.dsn()}"\nschema = "{schema}"\n'
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "statusd.cli", "sync", "--bootstrap", "--config", str(config)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"`statusd sync --bootstrap` exited {proc.returncode}: {tail[:200]}"
    return f"`statusd sync --bootstrap --config …` end to end (process start, connect, copy): {elapsed:.2f} s"


BOOT_BASE = "SELECT id, entity, version, data::text, updated_at, updated_by FROM {s}.entities"


async def p6_bootstrap(env: Env) -> Row:
    s = env.settings
    large = env.large()
    t0 = time.perf_counter()
    records = _hub_records(large.daemon.store_path)
    schema = env.hub_schema("p6boot")
    conn = await asyncpg.connect(env.dsn())
    try:
        await pg_schema.migrate(conn, schema)
        columns = ["id", "entity", "version", "data", "updated_at", "updated_by", "machine"]
        await conn.copy_records_to_table("entities", schema_name=schema, records=records, columns=columns)
        await conn.execute(f"ANALYZE {schema}.entities")
        total = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.entities"))
        hub_items = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.entities WHERE entity = 'work_item'"))
        env.seconds_seeding += time.perf_counter() - t0
        log(f"P6: hub {schema} holds {total:,} entities ({time.perf_counter() - t0:.1f}s)")

        rates, base_rates, notes = [], [], []
        ok = True
        for run in range(s.replication_runs):
            root = env.root / f"p6-bootstrap-{run}"
            copied, elapsed, items = await _bootstrap_once(env, schema, root / "store.sqlite3")
            shutil.rmtree(root, ignore_errors=True)
            rates.append(copied / elapsed)
            notes.append(f"run {run + 1}: {copied:,} entities in {elapsed:.2f} s")
            if copied != total or items != hub_items:
                ok = False
                notes.append(f"LOST: copied {copied:,} of {total:,}; {items:,} of {hub_items:,} work items in store")

            t1 = time.perf_counter()
            rows = await conn.fetch(BOOT_BASE.format(s=schema))
            base_rates.append(len(rows) / (time.perf_counter() - t1))
            del rows
        notes.append(_cli_bootstrap(env, schema, env.root / "p6-bootstrap-cli"))
    finally:
        await conn.close()
    row = rate_row(
        "P6",
        f"bootstrap pull into an empty store ({total:,} entities)",
        total * len(rates),
        rates,
        P6_BOOT_TARGET,
        base_rates,
        "asyncpg fetch of the same rows (SELECT id, entity, version, data::text, updated_at, updated_by "
        "FROM entities), one query",
    )
    row.unit = "rows/s"
    row.ok = ok
    row.notes.append(
        "p50/p99 columns: median / slowest run; Replicator.bootstrap() timed in-process, connection already open; "
        f"the hub holds the large dataset ({large.info.items:,} items, {large.info.edges:,} dependencies, vendors, "
        "deployments, enhancements) in the format apply_op writes"
    )
    row.notes += notes
    return row


async def p6_outbox(env: Env) -> list[Row]:
    return [await p6_replay(env), await p6_bootstrap(env)]


# --- P7 --------------------------------------------------------------------------------------


async def p7_propagation(env: Env) -> list[Row]:
    s = env.settings
    schema = env.hub_schema("p7")
    a = env.start(env.replicated("p7-a", schema))
    await _online(a)
    b = env.start(env.replicated("p7-b", schema))
    await _online(b)
    probe = StoreProbe(b.store_path)
    returned: list[int] = []
    try:
        async with a.client("bench") as c:
            item = await c.call("create_work_item", item_type="task", title="P7 item")
            ident, version = str(item["id"]), int(item["version"])
            await _until(lambda: probe.version(ident) >= version, "the item to reach daemon B")

            async def visible(want: int) -> None:
                await _until(lambda: probe.version(ident) >= want, "the update to reach daemon B", every=0.0002)

            async def call(i: int) -> object:
                nonlocal version
                t0 = time.perf_counter_ns()
                seen = asyncio.create_task(visible(version + 1))
                out = await c.call("update_work_item", id=ident, version=version, title=f"P7 update {i}")
                returned.append(time.perf_counter_ns() - t0)
                if out.get("sync") != "confirmed" or int(out["version"]) != version + 1:
                    seen.cancel()
                    raise RuntimeError(f"unexpected answer from daemon A: {out}")
                version += 1
                async with asyncio.timeout(SETTLE_S):
                    await seen
                return out

            warmup = min(s.warmup, 20)
            subject = await sample_async(call, s.slow_samples, warmup, s)
    finally:
        probe.close()
    returned = returned[subject.warmup_calls :]

    conn_a = await asyncpg.connect(env.dsn())
    conn_b = await asyncpg.connect(env.dsn())
    channel = f"{schema}_bench"
    heard: asyncio.Future[None] | None = None

    def listener(*_: object) -> None:
        if heard is not None and not heard.done():
            heard.set_result(None)

    await conn_b.add_listener(channel, listener)
    try:

        async def notify(i: int) -> None:
            nonlocal heard
            heard = asyncio.get_running_loop().create_future()
            await conn_a.execute(f"NOTIFY {channel}")
            await heard

        base = await sample_async(notify, s.samples, s.warmup, s)
    finally:
        await conn_b.close()
        await conn_a.close()
    row = latency_row(
        "P7",
        "write on daemon A → in daemon B's store (one hub)",
        subject,
        P7_TARGET,
        base,
        "Postgres LISTEN/NOTIFY round trip between two asyncpg connections (NOTIFY on one, until the "
        "other's listener callback runs)",
    )
    row.notes.append(
        f"clock starts as A's update_work_item is sent; A's confirmed answer came back at p50 "
        f"{Stats(returned).p50:.2f} ms p99 {Stats(returned).p99:.2f} ms; B's store file polled read-only about "
        "once a millisecond"
    )
    _stop(b)
    _stop(a)
    return [row]


# --- P12 -------------------------------------------------------------------------------------


async def _vendor_stats(env: Env, socket: Path, lookups: list[str], cpu: Callable[[], float]) -> tuple[Stats, str]:
    s = env.settings
    async with StatusdClient.connect(socket, client_name="bench") as c:
        got = await c.call("query_vendor_status", name=lookups[1])
        assert got["name"].lower() == lookups[1].lower(), got

        async def call(i: int) -> object:
            return await c.call("query_vendor_status", name=lookups[i % len(lookups)])

        return await sample_with_cpu(call, s.samples, s.warmup, s, cpu)


async def p12_slow_hub(env: Env) -> list[Row]:
    s = env.settings
    seed = env.seed()
    await seed.pool()  # the seed data's Postgres copy: the baseline's vendors table
    proxy = env.proxy()
    proxy.set_mode("delay", PROXY_DELAY_MS)
    schema = env.hub_schema("p12")
    d = env.replicated("p12-slow-hub", schema, dsn=proxy.dsn_for(env.dsn()))
    info = _write_store(d.store_path, datasets.seed_small)
    env.start(d)
    await _settled(d)  # its 118 entities are on the hub: the daemon is online and idle, 50 ms away
    lookups = _lookups(info.vendor_names)
    subject, cpu = await _vendor_stats(env, d.socket_path, lookups, _cpu(d))
    status = await _sync_status(d)
    local, _ = await _vendor_stats(env, seed.socket_path, lookups, seed.cpu_seconds)

    conn = await asyncpg.connect(proxy.dsn_for(env.dsn()), server_settings={"search_path": seed.schema or "public"})
    try:
        await conn.fetchval("SELECT 1")  # the first run of a statement prepares it: two round trips
        t0 = time.perf_counter()
        await conn.fetchval("SELECT 1")
        rtt = (time.perf_counter() - t0) * 1e3
        assert await conn.fetchrow(pg.VENDOR, lookups[1]) is not None

        async def base(i: int) -> object:
            return await conn.fetchrow(pg.VENDOR, lookups[i % len(lookups)])

        baseline = await sample_async(base, s.slow_samples, min(s.warmup, 10), s)
    finally:
        await conn.close()
    row = latency_row(
        "P12",
        "query_vendor_status (45 vendors), replicated, Postgres +50 ms",
        subject,
        Target("P1: p50≤0.5 p99≤1 ms", p50_max=P1_TARGET.p50_max, p99_max=P1_TARGET.p99_max),
        baseline,
        f"asyncpg fetchrow(SELECT … FROM vendors WHERE lower(name)=lower($1)) per call through the same "
        f"proxy ({PROXY_DELAY_MS} ms each way)",
    )
    row.notes.append(cpu)
    row.notes.append(
        f"beside it, P1 on the standalone seed daemon: p50 {local.p50:.3f} ms p99 {local.p99:.3f} ms; "
        f"one round trip (SELECT 1) through the proxy {rtt:.1f} ms; hub reachable during the run: "
        f"{bool((status.get('postgres') or {}).get('reachable'))}"
    )
    _stop(d)
    return [row]
