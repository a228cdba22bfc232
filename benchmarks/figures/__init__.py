"""The SPEC §11 figures this build measures, in table order.

A figure is ``async def run(env) -> list[Row]``; add one by writing it in a module here and listing
it in ``FIGURES``. ``PLANNED`` names the figures that need parts not built yet; they are printed as
not measured, so the table always says what it leaves out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.core import Row
from benchmarks.figures import imports, mirror, operations, reads, replication, scale, subscriptions, surface, writes
from benchmarks.harness import Env


@dataclass(frozen=True)
class Figure:
    id: str
    title: str
    run: Callable[[Env], Awaitable[list[Row]]]


FIGURES: dict[str, Figure] = {
    f.id: f
    for f in (
        Figure("P1", "query_vendor_status round trip (45 / 10,000 vendors)", reads.p1_vendor_status),
        Figure("P2", "query_work_item at 100,000 items (chain leaf / root with children)", reads.p2_work_item),
        Figure("P3", "generate_full_status (seed data / 100,000 items)", reads.p3_full_status),
        Figure("P4", "update_work_item round trip, queued/local and confirmed by Postgres", writes.p4_update),
        Figure("P5", "20 concurrent clients, 70% reads / 30% writes; the seed's 100 ops", writes.p5_concurrency),
        Figure("P6", "replay of queued writes after an outage / bootstrap pull", replication.p6_outbox),
        Figure("P7", "write on daemon A visible in daemon B's store", replication.p7_propagation),
        Figure("P8", "markdown mirror: change → file, save → store, render at scale", mirror.p8_mirror),
        Figure("P10", "tools/list size", surface.p10_tools_list),
        Figure("P11", "statusd mcp spawn to first answer", surface.p11_bridge_spawn),
        Figure("P12", "P1 on a replicated daemon with Postgres behind +50 ms", replication.p12_slow_hub),
        Figure("P9", "daemon RSS at 100,000 items / idle CPU", operations.p9_memory_idle),
        Figure("P13", "CLI command wall time", operations.p13_cli),
        Figure("P14", "daemon start → READY", operations.p14_startup),
        Figure("P15", "N daemons on one Postgres: visibility, hub throughput, connections", scale.p15_scale),
        Figure(
            "P17",
            "P1 while another client loops generate_full_status at 100,000 items",
            operations.p17_reads_under_report_load,
        ),
        Figure("P16", "change → resources/updated to a subscriber", subscriptions.p16_subscription_latency),
        Figure("I1", "import 10,000 beads records while other clients call (issue 11)", imports.i1_import),
    )
}

PLANNED: dict[str, str] = {}
