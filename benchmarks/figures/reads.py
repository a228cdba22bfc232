"""P1–P3: read tools over the socket with the official MCP client, against Postgres baselines."""

from __future__ import annotations

import random
from typing import Any

from benchmarks import pg
from benchmarks.core import Row, Target, latency_row, sample_async, sample_with_cpu
from benchmarks.harness import Dataset, Env
from statusd.models import now_iso

P1_TARGET = Target("p50≤0.5 p99≤1 ms", p50_max=0.5, p99_max=1.0)
P2_TARGET = Target("p50≤1 p99≤2 ms", p50_max=1.0, p99_max=2.0)


def _lookups(names: list[str], count: int = 1_000) -> list[str]:
    """Names in a fixed pseudo-random order, half of them in another case (lookups ignore case)."""
    rng = random.Random(11)
    picks = [rng.choice(names) for _ in range(count)]
    return [n.upper() if i % 2 else n for i, n in enumerate(picks)]


async def _p1_one(env: Env, ds: Dataset, names: list[str], label: str) -> Row:
    s = env.settings
    lookups = _lookups(names)
    async with ds.client() as c:
        got = await c.call("query_vendor_status", name=lookups[1])
        assert got["name"].lower() == lookups[1].lower() and "operational" in got, got

        async def call(i: int) -> object:
            return await c.call("query_vendor_status", name=lookups[i % len(lookups)])

        subject, cpu = await sample_with_cpu(call, s.samples, s.warmup, s, ds.cpu_seconds)
    pool = await ds.pool()
    assert await pool.fetchrow(pg.VENDOR, lookups[1]) is not None

    async def base(i: int) -> object:
        return await pool.fetchrow(pg.VENDOR, lookups[i % len(lookups)])

    baseline = await sample_async(base, s.samples, s.warmup, s)
    row = latency_row(
        "P1",
        f"query_vendor_status, {label}",
        subject,
        P1_TARGET,
        baseline,
        "asyncpg pool.fetchrow(SELECT … FROM vendors WHERE lower(name)=lower($1)) per call, same rows, "
        "index on lower(name)",
    )
    row.notes.append(cpu)
    return row


async def p1_vendor_status(env: Env) -> list[Row]:
    seed = env.seed()
    big = env.vendors()
    return [
        await _p1_one(env, seed, seed.info.vendor_names, "45 vendors"),
        await _p1_one(env, big, big.info, f"{len(big.info):,} vendors"),
    ]


def _count_tree(children: list[dict[str, object]]) -> int:
    return sum(1 + _count_tree(c["children"]) for c in children)  # type: ignore[arg-type]


async def p2_work_item(env: Env) -> list[Row]:
    s = env.settings
    ds = env.large()
    info = ds.info
    size = f"{info.items:,} items"
    cases = [
        (f"query_work_item leaf (depth 4, {info.leaf_edges} deps), {size}", {"id": info.leaf_id}, False),
        (
            f"query_work_item root +children ({info.root_descendants}), {size}",
            {"id": info.root_id, "include_children": True},
            True,
        ),
    ]
    rows = []
    pool = await ds.pool()
    async with ds.client() as c:
        leaf = await c.call("query_work_item", id=info.leaf_id)
        assert [p["id"] for p in leaf["parent_chain"]] == info.chain[:-1], leaf["parent_chain"]
        assert len(leaf["dependencies"]) == info.leaf_edges, leaf["dependencies"]
        root = await c.call("query_work_item", id=info.root_id, include_children=True)
        assert _count_tree(root["children"]) == info.root_descendants
        for what, args, children in cases:

            async def call(i: int, args: dict[str, object] = args) -> object:
                return await c.call("query_work_item", **args)

            subject, cpu = await sample_with_cpu(call, s.samples, s.warmup, s, ds.cpu_seconds)

            async def base(i: int, ident: str = str(args["id"]), children: bool = children) -> object:
                async with pool.acquire() as conn:
                    return await pg.query_item(conn, ident, children=children)

            baseline = await sample_async(base, s.samples, s.warmup, s)
            queries = 4 if children else 3
            row = latency_row(
                "P2",
                what,
                subject,
                P2_TARGET,
                baseline,
                f"asyncpg, {queries} queries per call on one pooled connection (row, recursive-CTE parent "
                f"chain{', recursive-CTE subtree' if children else ''}, dependencies) over a Postgres copy "
                f"of all {ds.pg_counts.get('work_items', 0):,} items",
            )
            row.notes.append(cpu)
            rows.append(row)
    return rows


async def p3_full_status(env: Env) -> list[Row]:
    s = env.settings
    rows = []
    large = env.large()
    cases = [
        (env.seed(), "seed data (45 v, 50 items, 10 d, 8 e)", Target("p50≤5 ms", p50_max=5.0), s.samples),
        (
            large,
            f"{large.info.items:,} items ({large.info.active_items:,} active)",
            Target("p50≤50 ms", p50_max=50.0),
            s.slow_samples,
        ),
    ]
    for ds, label, target, n in cases:
        warmup = min(s.warmup, max(5, n // 10))
        async with ds.client() as c:
            report = await c.call("generate_full_status")
            assert report["vendor_health"]["total_vendors"] == 45, report["vendor_health"]

            async def call(i: int) -> object:
                return await c.call("generate_full_status")

            subject, cpu = await sample_with_cpu(call, n, warmup, s, ds.cpu_seconds)
        pool = await ds.pool()
        now = now_iso()

        async def base(i: int, pool: Any = pool, now: str = now) -> object:
            async with pool.acquire() as conn:
                return await pg.full_status(conn, now)

        baseline = await sample_async(base, n, warmup, s)
        row = latency_row(
            "P3",
            f"generate_full_status, {label}",
            subject,
            target,
            baseline,
            "asyncpg, the report's 7 aggregate queries on one pooled connection (vendor health, live items "
            "by type/status/priority, ready count, archived count, last 10 deployments, pending "
            "enhancements, configuration), same rows",
        )
        row.notes.append(cpu)
        row.notes.append(
            f"report: {report['active_work_items']['total_count']:,} live items, "
            f"ready {report['active_work_items']['ready_count']:,}, "
            f"archived {report['active_work_items']['archived_count']:,}"
        )
        rows.append(row)
    return rows
