"""P16: a change → ``notifications/resources/updated`` to a subscriber (local write; write on another daemon)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.core import Row, Stats, Target, latency_row, sample_async
from benchmarks.figures.replication import _online
from benchmarks.harness import Env

P16_TARGET = Target("p50≤100 ms", p50_max=100.0)
WAIT_S = 30.0


class Subscriber:
    """A raw MCP connection subscribed to one resource; ``next_update()`` waits for the next notice."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, socket_path: Path, uri: str) -> Subscriber:
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=16 * 1024 * 1024)
        sub = cls(reader, writer)
        await sub._request(1, "initialize", {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench-subscriber", "version": "0"},
        })  # fmt: skip
        writer.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        await sub._request(2, "resources/subscribe", {"uri": uri})
        return sub

    async def _request(self, ident: int, method: str, params: dict[str, Any]) -> None:
        self.writer.write(json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}).encode())
        self.writer.write(b"\n")
        await self.writer.drain()
        async with asyncio.timeout(WAIT_S):
            while json.loads(await self.reader.readline()).get("id") != ident:
                pass

    async def next_update(self) -> None:
        async with asyncio.timeout(WAIT_S):
            while b"notifications/resources/updated" not in await self.reader.readline():
                pass

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _measure(env: Env, writer_socket: Path, subscriber_socket: Path, uri: str, ident: str) -> tuple[Stats, Stats]:
    """(write sent → subscriber notified, write round trip) per update of item ``ident``."""
    s = env.settings
    sub = await Subscriber.open(subscriber_socket, uri)
    round_trips: list[int] = []
    try:
        from statusd.client import StatusdClient

        async with StatusdClient.connect(writer_socket, client_name="bench-writer") as c:
            version = int((await c.call("query_work_item", id=ident))["version"])

            async def change(i: int) -> None:
                nonlocal version
                t0 = time.perf_counter_ns()
                heard = asyncio.create_task(sub.next_update())
                out = await c.call("update_work_item", id=ident, version=version, title=f"P16 update {i}")
                round_trips.append(time.perf_counter_ns() - t0)
                version = int(out["version"])
                await heard

            subject = await sample_async(change, s.slow_samples, min(s.warmup, 10), s)
    finally:
        await sub.close()
    return subject, Stats(round_trips[subject.warmup_calls :])


async def p16_subscription_latency(env: Env) -> list[Row]:
    ds = env.seed()
    async with ds.client("bench") as c:
        item = await c.call("create_work_item", item_type="task", title="P16 item")
    ident = str(item["id"])
    rows = []
    for uri, label in ((f"statusd://work-items/{ident}", "work item"), ("statusd://status", "status")):
        subject, base = await _measure(env, ds.socket_path, ds.socket_path, uri, ident)
        rows.append(
            latency_row(
                "P16",
                f"local write → resources/updated ({label})",
                subject,
                P16_TARGET,
                base,
                "the write's own round trip (update_work_item answered), which the notice follows",
            )
        )

    schema = env.hub_schema("p16")
    a = env.start(env.replicated("p16-a", schema))
    await _online(a)
    b = env.start(env.replicated("p16-b", schema))
    await _online(b)
    async with a.client("bench") as c:
        item = await c.call("create_work_item", item_type="task", title="P16 replicated item")
    ident = str(item["id"])
    uri = f"statusd://work-items/{ident}"
    async with b.client("bench") as c:
        deadline = time.monotonic() + WAIT_S
        while not (await c.call("list_work_items", text="P16 replicated"))["items"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the item never reached daemon B")
            await asyncio.sleep(0.01)
    subject, base = await _measure(env, a.socket_path, b.socket_path, uri, ident)
    rows.append(
        latency_row(
            "P16",
            "write on daemon A → resources/updated on daemon B",
            subject,
            P16_TARGET,
            base,
            "the write's own round trip on daemon A (confirmed by Postgres)",
        )
    )
    rows[-1].notes.append("includes replication A → Postgres → B (P7) and the 20 ms debounce")
    return rows
