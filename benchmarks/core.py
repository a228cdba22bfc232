"""Shared pieces: run settings, samplers, percentiles, result rows, the printed table."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How hard to push. ``--quick`` shrinks every count so CI can smoke-test the whole run."""

    quick: bool
    samples: int  # per sub-millisecond figure
    slow_samples: int  # per figure whose calls take tens of milliseconds
    warmup: int
    large_vendors: int
    large_items: int
    mix_seconds: float
    seed_mix_repeats: int
    spawns: int
    budget_s: float  # a latency case stops early after this long, once it has min_samples
    min_samples: int
    replay_writes: int  # P6: writes queued during the outage, per replay
    replication_runs: int  # P6: replays and bootstraps measured (p50 = median run, p99 = slowest)
    mode: str = "full"

    @property
    def smoke(self) -> bool:
        """The test suite's run: figures whose counts are fixed take their smallest meaningful size."""
        return self.mode == "smoke"

    @classmethod
    def for_mode(cls, quick: bool, smoke: bool = False) -> Settings:
        if smoke:
            # The test suite's run: every figure end to end with its invariants, counts too small
            # for the timings to mean anything.
            return cls(True, 30, 5, 5, 200, 1_000, 0.3, 1, 2, 0.5, 5, 100, 1, "smoke")
        if quick:
            return cls(True, 200, 20, 30, 1_000, 10_000, 1.0, 5, 5, 2.0, 20, 1_000, 1, "quick")
        return cls(False, 3_000, 200, 300, 10_000, 100_000, 5.0, 50, 30, 12.0, 300, 10_000, 3)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


@dataclass
class Stats:
    """Latency samples in nanoseconds, reported in milliseconds."""

    samples_ns: list[int]
    warmup_calls: int = 0

    @property
    def n(self) -> int:
        return len(self.samples_ns)

    def ms(self, q: float) -> float:
        return percentile(sorted(self.samples_ns), q) / 1e6

    @property
    def p50(self) -> float:
        return self.ms(50)

    @property
    def p99(self) -> float:
        return self.ms(99)


async def sample_async(
    call: Callable[[int], Awaitable[Any]], n: int, warmup: int, settings: Settings | None = None
) -> Stats:
    """Time ``await call(i)`` n times after ``warmup`` untimed calls.

    With ``settings``, a slow case stops once it has run ``settings.budget_s`` and collected
    ``settings.min_samples``, and warms up for at most a quarter of that (sub-millisecond cases
    always reach ``n`` well within the budget).
    """
    clock = time.perf_counter_ns
    budget = None if settings is None else settings.budget_s * 1e9
    start = clock()
    warmed = 0
    for i in range(warmup):
        await call(i)
        warmed += 1
        if budget is not None and warmed > 5 and clock() - start > budget / 4:
            break
    gc.collect()
    out: list[int] = []
    least = n if settings is None else min(n, settings.min_samples)
    start = clock()
    for i in range(n):
        t0 = clock()
        await call(i)
        t1 = clock()
        out.append(t1 - t0)
        if budget is not None and i + 1 >= least and t1 - start > budget:
            break
    return Stats(out, warmed)


def sample_sync(call: Callable[[int], Any], n: int, warmup: int) -> Stats:
    for i in range(warmup):
        call(i)
    gc.collect()
    out: list[int] = []
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        call(i)
        out.append(clock() - t0)
    return Stats(out)


async def sample_with_cpu(
    call: Callable[[int], Awaitable[Any]],
    n: int,
    warmup: int,
    settings: Settings,
    cpu_seconds: Callable[[], float],
) -> tuple[Stats, str]:
    """``sample_async`` plus where the CPU went: the daemon's and this process's CPU per call.

    On a shared machine wall-clock percentiles absorb other processes' load; CPU per call does not.
    """
    d0, c0 = cpu_seconds(), time.process_time()
    stats = await sample_async(call, n, warmup, settings)
    calls = stats.n + stats.warmup_calls
    daemon = (cpu_seconds() - d0) / calls * 1e3
    client = (time.process_time() - c0) / calls * 1e3
    return stats, f"CPU per call: daemon {daemon:.3f} ms, client (benchmark process) {client:.3f} ms"


@dataclass(frozen=True)
class Target:
    """What a row must reach. Latency/size rows: upper bounds; rate rows: a lower bound on p50."""

    label: str
    p50_max: float | None = None
    p99_max: float | None = None
    rate_min: float | None = None

    def met(self, p50: float, p99: float) -> bool:
        if self.rate_min is not None and not p50 >= self.rate_min:
            return False
        if self.p50_max is not None and not p50 <= self.p50_max:
            return False
        return not (self.p99_max is not None and not p99 <= self.p99_max)


NO_TARGET = Target("—")


@dataclass
class Row:
    """One line of the table. For ``unit == "ops/s"`` p50 is the median window rate and p99 the
    rate 99% of windows reached (a low percentile of the rate, i.e. the slow tail)."""

    figure: str
    what: str
    n: int
    unit: str
    p50: float
    p99: float
    target: Target = NO_TARGET
    base_p50: float | None = None
    base_p99: float | None = None
    baseline: str = "—"
    ok: bool = True  # invariants (no lost row, no deadlock) held
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "MISS"
        if self.target is NO_TARGET:
            return "—"
        return "PASS" if self.target.met(self.p50, self.p99) else "MISS"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = asdict(self.target)
        out["verdict"] = self.verdict
        return out


def latency_row(figure: str, what: str, subject: Stats, target: Target, base: Stats | None, baseline: str) -> Row:
    return Row(
        figure,
        what,
        subject.n,
        "ms",
        subject.p50,
        subject.p99,
        target,
        None if base is None else base.p50,
        None if base is None else base.p99,
        baseline,
    )


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ops/s", "tokens"):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def render_table(rows: Sequence[Row]) -> str:
    header = ("id", "what", "n", "unit", "p50", "p99", "target", "base p50", "base p99", "result")
    lines = [
        (
            r.figure,
            r.what,
            f"{r.n:,}",
            r.unit,
            _num(r.p50, r.unit),
            _num(r.p99, r.unit),
            r.target.label,
            _num(r.base_p50, r.unit),
            _num(r.base_p99, r.unit),
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    right = {2, 4, 5, 7, 8}

    def fmt(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs)

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    return "\n".join(line.rstrip() for line in out)


def render_notes(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        if r.baseline != "—":
            out.append(f"{r.figure} {r.what}: baseline = {r.baseline}")
        out += [f"{r.figure} {r.what}: {note}" for note in r.notes]
    return "\n".join(out)
