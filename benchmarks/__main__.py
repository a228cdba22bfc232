"""``python -m benchmarks [--quick | --smoke] [--only P1,P3] [--json PATH]``: run, print the table, save JSON.

Exit status: 0 when every selected figure ran (whatever it measured), 1 when one crashed or the
environment could not be torn down cleanly, 2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.core import Row, Settings, render_notes, render_table
from benchmarks.figures import FIGURES, PLANNED
from benchmarks.harness import environment, log


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run the SPEC §11 benchmark and print its table."
    )
    parser.add_argument("--quick", action="store_true", help="small counts and datasets")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: proves every figure runs (the test suite's run)"
    )
    parser.add_argument("--only", metavar="IDS", help=f"comma-separated figure ids ({', '.join(FIGURES)})")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    selected = list(FIGURES)
    if args.only:
        wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
        planned = [w for w in wanted if w in {p.upper() for p in PLANNED}]
        unknown = [w for w in wanted if w not in FIGURES and w not in planned]
        if planned:
            parser.error(f"not measured in this build yet: {', '.join(planned)}")
        if unknown:
            parser.error(f"unknown figure id(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
        selected = [f for f in FIGURES if f in wanted]
    args.selected = selected
    return args


async def run(settings: Settings, selected: list[str]) -> tuple[list[Row], list[str], dict[str, Any]]:
    rows: list[Row] = []
    errors: list[str] = []
    facts: dict[str, Any] = {}
    async with environment(settings) as env:
        for figure_id in selected:
            figure = FIGURES[figure_id]
            log(f"{figure_id}: {figure.title}")
            t0 = time.perf_counter()
            try:
                rows += await figure.run(env)
            except Exception:
                errors.append(f"{figure_id} crashed:\n{traceback.format_exc()}")
                log(errors[-1])
            log(f"{figure_id}: done in {time.perf_counter() - t0:.1f}s")
        facts["seeding_s"] = round(env.seconds_seeding, 2)
        if env.pg_version:
            facts["postgres"] = env.pg_version
    errors += [f"teardown: {p}" for p in env.problems]
    return rows, errors, facts


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = Settings.for_mode(args.quick, smoke=args.smoke)
    started = time.time()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows, errors, facts = asyncio.run(run(settings, args.selected))
    duration = time.perf_counter() - t0
    facts.update(
        load_1min=f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after",
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        cpus=os.cpu_count(),
        machine=platform.machine(),
        kernel=platform.release(),
    )
    mode = settings.mode
    print(f"statusd benchmark ({mode} mode) — SPEC §11; times in ms unless the unit says otherwise")
    print(", ".join(f"{k} {v}" for k, v in facts.items()))
    if load_before > 0.5:
        print(f"warning: the machine was already busy (1-min load {load_before:.2f}); timings include that contention")
    print()
    print(render_table(rows))
    print()
    notes = render_notes(rows)
    if notes:
        print(notes)
        print()
    print(f"Not measured in this build: {', '.join(PLANNED)}.")
    print(f"Run time {duration:.1f} s (seeding and daemon start-up {facts.get('seeding_s', 0):.1f} s).")
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    if args.json:
        payload = {
            "mode": mode,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(duration, 2),
            "settings": asdict(settings),
            "environment": facts,
            "figures": args.selected,
            "rows": [r.to_json() for r in rows],
            "not_measured": PLANNED,
            "errors": errors,
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
