"""R1-lite (SPEC §12): ``kill -9`` the daemon right after acknowledged writes, again and again.

Every acknowledged write must survive in the store's outbox and reach the hub exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from mcp.shared.exceptions import MCPError
from sync_support import (
    Fleet,
    Intent,
    assert_no_lost_intent,
    hub_entities,
    pg_config,
    wait_converged,
    wait_online,
)

from daemon_support import DaemonProcess
from statusd.client import VersionMismatchError

ROUNDS = 4


class Ledger:
    """What the writers were told: every acknowledged write, with a value unique to it."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.intents: list[Intent] = []
        self.created: dict[str, str] = {}
        self.items: list[dict[str, Any]] = []  # id and last known version
        self.acked = 0

    async def writer(self, d: DaemonProcess, tag: str, enough: asyncio.Event, kill_after: int) -> None:
        async with d.client(tag) as c:
            for n in range(1000):
                value = f"k9-{tag}-{n}"
                if n % 2 == 0 or not self.items:
                    result = await c.call("create_work_item", item_type="task", title=value)
                    self.created[result["id"]] = value
                    self.intents.append(Intent(0, result["id"], "title", value))
                    self.items.append({"id": result["id"], "version": result["version"]})
                else:
                    item = self.rng.choice(self.items)
                    try:
                        result = await c.call(
                            "update_work_item", id=item["id"], version=item["version"], description=value
                        )
                    except VersionMismatchError as exc:
                        item["version"] = exc.actual_version
                        continue
                    item["version"] = result["version"]
                    self.intents.append(Intent(0, item["id"], "description", value))
                self.acked += 1
                if self.acked >= kill_after:
                    enough.set()


async def test_r1_kill9_after_acknowledged_writes_loses_nothing_and_doubles_nothing(
    fleet: Fleet, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    config = pg_config(dsn, schema)
    ledger = Ledger(seed=1)
    for round_ in range(ROUNDS):
        d = fleet.start(config, name="victim", process=True)  # killed -9 below
        if round_ % 2 == 0:
            await wait_online(d)  # odd rounds may be killed while still connecting
        enough = asyncio.Event()
        kill_after = ledger.acked + ledger.rng.randint(3, 15)
        tasks = [asyncio.create_task(ledger.writer(d, f"{round_}-{w}", enough, kill_after)) for w in range(3)]
        await enough.wait()
        d.kill()  # SIGKILL, with writes in flight
        for t in tasks:
            with contextlib.suppress(MCPError):  # "Connection closed": the call in flight died with it
                await t
        assert not d.alive()

    final = fleet.start(config, name="victim")
    await wait_online(final)
    await wait_converged([final.store_path], dsn, schema)
    hub = await hub_entities(dsn, schema)
    assert ledger.created.keys() <= hub.keys()
    titles = sorted(e["fields"]["title"] for e in hub.values() if e["entity"] == "work_item")
    assert len(titles) == len(set(titles)), "a create reached the hub twice"
    assert set(ledger.created.values()) <= set(titles)
    await assert_no_lost_intent(ledger.intents, [final.store_path], dsn, schema)
