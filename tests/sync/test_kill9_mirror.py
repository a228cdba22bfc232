"""R1 with a human in the loop: ``kill -9`` the daemon at random moments around a save of the
markdown file, while tools keep writing, again and again.

Every line the human added (the file keeps it across the crash) and every acknowledged tool write
must end up in the store exactly once, and nothing may be deleted. This found two crash windows:
between replacing the file and its shadow, and between importing a save and writing its ids back
(docs/decisions.md, 2026-12-01).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

from daemon_support import DaemonProcess, until
from soak import bounded
from statusd.store import Store

ROUNDS = bounded(8, 60)
MARKER = "<!-- statusd mirror"


def save_like_an_editor(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".swp~")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def titles(store_path: Path) -> tuple[Counter[str], int]:
    store = Store(store_path)
    store.open()
    try:
        rows = store.reader.execute("SELECT title, deleted_at FROM work_items WHERE item_type = 'task'").fetchall()
    finally:
        store.close()
    return Counter(r[0] for r in rows), sum(1 for r in rows if r[1] is not None)


async def test_kill9_around_human_saves_creates_each_line_once_and_loses_none(tmp_path: Path) -> None:
    rng = random.Random(7)
    root = tmp_path / "project"
    mirror = root / ".project_status.md"
    config = "\n[mirror]\ndebounce_ms = 40\n"
    human: list[str] = []
    tools: list[str] = []
    for round_ in range(ROUNDS):
        d = DaemonProcess(root, extra_config=config).start()
        try:
            async with d.client(f"tools-{round_}") as c:
                for n in range(2):  # the file catches up with these before the human edits it
                    title = f"tool {round_}.{n}"
                    await c.call("create_work_item", item_type="task", title=title)
                    tools.append(title)
                caught_up = f"tool {round_}.1"
                await until(lambda: mirror.exists() and caught_up in mirror.read_text(), what="the render")  # noqa: B023
                text = mirror.read_text()
                assert text.startswith(MARKER)  # a file statusd wrote, not one it would migrate
                added = [f"human {round_}.{k}" for k in range(2)]
                anchor = next(line for line in text.splitlines() if f"tool {round_}.1 (task" in line)
                new_lines = "".join(f"\n- [ ] {t} (task, low)" for t in added)
                save_like_an_editor(mirror, text.replace(anchor, anchor + new_lines, 1))
                human.extend(added)

                async def more_tools(round_: int = round_) -> None:
                    for n in range(2, 40):
                        title = f"tool {round_}.{n}"
                        await c.call("create_work_item", item_type="task", title=title)
                        tools.append(title)  # acknowledged

                writer = asyncio.create_task(more_tools())
                await asyncio.sleep(rng.uniform(0.0, 0.25))
                d.kill()  # SIGKILL: around the import of the save, its render, the shadow, the tools' writes
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
        finally:
            d.cleanup()

    final = DaemonProcess(root, extra_config=config).start()
    try:
        await until(
            lambda: all(f"{t} (task, low) ^" in mirror.read_text() for t in human), within=20, what="every line's id"
        )
        final.stop()
    finally:
        final.cleanup()
    counts, deleted = titles(final.store_path)
    twice = {t: n for t, n in counts.items() if n > 1}
    assert not twice, f"created more than once: {twice}"
    missing = [t for t in [*human, *tools] if counts[t] != 1]
    assert not missing, f"lost: {missing}"
    assert deleted == 0
