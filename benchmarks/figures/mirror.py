"""P8: the markdown mirror. Store change → file rewritten; human save → store updated; render at scale.

Baselines measured in the same run: writing the same bytes with a plain write + fsync + rename
(what the mirror's file write costs without the debounce, snapshot and render around it), and an
``update_work_item`` round trip (the direct way to change what a save changes).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

from benchmarks.core import Row, Stats, Target, latency_row, sample_async, sample_sync
from benchmarks.harness import Env
from statusd.sync.markdown_model import MirrorState, WorkItem
from statusd.sync.markdown_render import render
from statusd.sync.mirror import render_store, write_atomically

P8_WRITE = Target("p50≤300 ms", p50_max=300.0)
P8_IMPORT = Target("p50≤500 ms", p50_max=500.0)
P8_RENDER = Target("p50≤50 ms", p50_max=50.0)
POLL_S = 0.002


async def _until(check: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the mirror did not catch up within 10 s")
        await asyncio.sleep(POLL_S)


def _contains(path: Path, needle: str) -> bool:
    try:
        return needle in path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False


def _baseline_write(path: Path, data: bytes, n: int) -> Stats:
    target = path.with_name("baseline.md")
    try:
        return sample_sync(lambda i: write_atomically(target, data), n, 5)
    finally:
        target.unlink(missing_ok=True)


async def p8_mirror(env: Env) -> list[Row]:
    s = env.settings
    # Smoke: a few round trips each way prove the paths; the 10,000-item render shrinks to 1,000.
    n = 3 if s.smoke else max(10, min(s.slow_samples, 100))
    rendered = 1_000 if s.smoke else 10_000
    ds = env.seed()
    path = ds.daemon.root / ".project_status.md"
    rows = []
    async with ds.client() as c:
        item = await c.call("create_work_item", item_type="task", title="bench mirror 0")
        await _until(lambda: _contains(path, "bench mirror 0"))
        version = item["version"]

        async def change(i: int) -> None:
            nonlocal version
            title = f"bench mirror {i + 1}"
            done = await c.call("update_work_item", id=item["id"], version=version, title=title)
            version = done["version"]
            await _until(lambda: _contains(path, f"{title} (task"))

        subject = await sample_async(change, n, 1 if s.smoke else 3, s)
        base = _baseline_write(path, path.read_bytes(), n)
        rows.append(
            latency_row(
                "P8", "store change → mirror file rewritten (seed data)", subject, P8_WRITE, base,
                "write + fsync + rename of the same bytes, no debounce/snapshot/render",
            )
        )  # fmt: skip

        sid = item["id"][:8]
        counter = 0

        async def save(i: int) -> None:
            nonlocal counter
            counter += 1
            text = path.read_text(encoding="utf-8")
            current = next(line for line in text.split("\n") if line.endswith(f"^{sid}"))
            title = f"saved by hand {counter}"
            tmp = path.with_name(".edit.tmp")
            tmp.write_text(text.replace(current, f"- [ ] {title} (task, medium) ^{sid}"), encoding="utf-8")
            os.replace(tmp, path)

            async def applied() -> bool:
                got = await c.call("query_work_item", id=item["id"], include_dependencies=False)
                return bool(got["title"] == title)

            deadline = time.monotonic() + 10
            while not await applied():
                if time.monotonic() > deadline:
                    mirror = (await c.call("sync_status"))["mirror"]
                    raise TimeoutError(f"save {counter} was not imported within 10 s; mirror: {mirror}")
                await asyncio.sleep(POLL_S)
            await _until(lambda: _contains(path, f"{title} (task"))  # and the mirror has settled again

        subject = await sample_async(save, n, 1 if s.smoke else 2, s)
        current = (await c.call("query_work_item", id=item["id"]))["version"]

        async def direct(i: int) -> object:
            nonlocal current
            done = await c.call("update_work_item", id=item["id"], version=current, title=f"direct {i}")
            current = done["version"]
            return done

        base = await sample_async(direct, n, 3, s)
        rows.append(
            latency_row(
                "P8", "human save (rename) → store updated, seen over the socket", subject, P8_IMPORT, base,
                "update_work_item round trip making the same change",
            )
        )  # fmt: skip

    large = env.large()
    conn = sqlite3.connect(f"file:{large.daemon.store_path}?mode=ro", uri=True)
    try:
        live, active = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(status != 'completed'), 0) FROM work_items "
            "WHERE deleted_at IS NULL AND archived_at IS NULL"
        ).fetchone()
    finally:
        conn.close()
    store_path = large.daemon.store_path
    full = sample_sync(lambda i: render_store(store_path), max(5, n // 5), 2)
    data = render_store(store_path).encode()
    rows.append(
        latency_row(
            "P8", f"snapshot + render, {live:,} live items ({active:,} active) of {large.info.items:,}", full,
            P8_RENDER, _baseline_write(path, data, max(5, n // 5)),
            f"write + fsync + rename of the same {len(data) // 1024:,} KiB",
        )
    )  # fmt: skip

    state = MirrorState(
        work_items=tuple(
            WorkItem(f"{i:08x}", f"Work item {i}", "task", "medium", "active", children=()) for i in range(rendered)
        )
    )
    pure = sample_sync(lambda i: render(state), max(10, n // 2), 3)
    data = render(state).encode()
    rows.append(
        latency_row(
            "P8", f"render alone, {rendered:,} active items", pure, P8_RENDER,
            _baseline_write(path, data, max(10, n // 2)),
            f"write + fsync + rename of the same {len(data) // 1024:,} KiB",
        )
    )  # fmt: skip
    rows[-1].ok = data.count(b"\n- [ ] ") == rendered  # every item rendered, none lost or doubled
    return rows
