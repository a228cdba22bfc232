"""Helpers for the replication tests: replicated daemon configs, polling, and store-vs-hub comparison."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from tcp_proxy import TcpProxy

from daemon_support import DaemonProcess
from inprocess_support import ThreadedDaemon
from statusd.client import NotFoundError, StatusdClient, VersionMismatchError
from statusd.daemon.service import Service
from statusd.store import Store
from statusd.store.entities import DERIVED, ENTITIES
from statusd.sync.replicator import Replicator

T = TypeVar("T")

# Tests poll with these deadlines; nothing waits a fixed time for a condition.
CONVERGE_S = 30.0


def pg_config(dsn: str, schema: str, **sync: Any) -> str:
    """The ``[postgres]`` and ``[sync]`` sections of a replicated daemon's config.

    Unless a test says otherwise the reconnect pause is capped at 1 s and an idle connection is
    pinged every 0.5 s: a test that cuts or heals the link sees the daemon notice within about a
    second, not after a 5 s heartbeat or a pause of up to 15 s.
    """
    text = f'\n[postgres]\ndsn = "{dsn}"\nschema = "{schema}"\n'
    sync = {"max_backoff_s": 1.0, "heartbeat_s": 0.5, **sync}
    if sync:
        text += "\n[sync]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sync.items())
    return text


async def wait_for(
    probe: Callable[[], Awaitable[T]] | Callable[[], T],
    *,
    within: float = CONVERGE_S,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        last = probe()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


async def hub_connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=5)


async def hub_entities(dsn: str, schema: str) -> dict[str, dict[str, Any]]:
    """Every hub entity: id → {entity, version, fields}."""
    conn = await hub_connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT id, entity, version, data::text FROM {schema}.entities")
    finally:
        await conn.close()
    out = {}
    for ident, entity, version, data in rows:
        decoded = json.loads(data)
        fields = {f: decoded.get(f) for f in ENTITIES[entity].fields if f not in DERIVED}
        out[ident] = {"entity": entity, "version": version, "fields": fields}
    return out


async def hub_fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await hub_connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def store_connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to a (possibly running) daemon's store."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def store_entities(path: Path) -> dict[str, dict[str, Any]]:
    """Every entity of a store, shaped like :func:`hub_entities`, minus retired duplicate vendors.

    A vendor that lost a duplicate-name race never reached the hub: it lives on, hidden, only in
    the store of the machine that created it (and whole in the conflict record); so does an entity
    whose create the hub refused for good.
    """
    conn = store_connect(path)
    try:
        retired = {
            json.loads(op)["entity_id"]
            for (op,) in conn.execute("SELECT local_op FROM conflicts WHERE kind = 'duplicate'")
        }
        # Likewise an entity whose create the hub refused, until a retry sends it again.
        retired |= {
            ident
            for (ident,) in conn.execute(
                "SELECT entity_id FROM conflicts WHERE kind = 'rejected' AND remote_version IS NULL "
                "AND (resolution IS NULL OR resolution IN ('keep_remote', 'discard'))"
            )
        }
        out = {}
        for entity in ENTITIES.values():
            for row in conn.execute(entity.select):
                decoded = dict(zip(entity.columns, row, strict=True))
                if decoded["id"] in retired:
                    continue
                fields = {}
                for f in entity.fields:
                    if f in DERIVED:
                        continue
                    value = decoded[f]
                    fields[f] = json.loads(value) if f in entity.json_fields and value is not None else value
                out[decoded["id"]] = {"entity": entity.name, "version": decoded["version"], "fields": fields}
        return out
    finally:
        conn.close()


def store_rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = store_connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def store_scalar(path: Path, sql: str, *args: Any) -> Any:
    return store_rows(path, sql, *args)[0][0]


def outbox_size(path: Path) -> int:
    return int(store_scalar(path, "SELECT COUNT(*) FROM outbox"))


def differences(store: dict[str, dict[str, Any]], hub: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences between one store's entities and the hub's (empty when equal)."""
    out = [f"only in store: {i} {store[i]}" for i in store.keys() - hub.keys()]
    out += [f"only in hub: {i} {hub[i]}" for i in hub.keys() - store.keys()]
    for ident in store.keys() & hub.keys():
        if store[ident] != hub[ident]:
            out.append(f"{ident}: store {store[ident]} != hub {hub[ident]}")
    return out


async def converged(stores: list[Path], dsn: str, schema: str) -> bool:
    """Whether every store has an empty outbox and equals the hub."""
    if any(outbox_size(p) for p in stores):
        return False
    hub = await hub_entities(dsn, schema)
    return all(not differences(store_entities(p), hub) for p in stores)


async def wait_converged(stores: list[Path], dsn: str, schema: str, within: float = CONVERGE_S) -> None:
    try:
        await wait_for(lambda: converged(stores, dsn, schema), within=within, what="stores to converge", interval=0.05)
    except AssertionError:
        hub = await hub_entities(dsn, schema)
        report = [f"{p}: outbox={outbox_size(p)} {differences(store_entities(p), hub)[:5]}" for p in stores]
        raise AssertionError("stores did not converge with the hub:\n" + "\n".join(report)) from None


Daemon = DaemonProcess | ThreadedDaemon


class Fleet:
    """Replicated daemons started for one test, each with its own store and socket.

    Each machine is the real daemon on a thread of the test process (no interpreter start-up); a
    test about the process itself (kill -9, a crash point set through the environment) asks for
    ``process=True``, and any ``env`` implies it.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.daemons: list[Daemon] = []

    def spawn(
        self,
        extra_config: str,
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        process: bool = False,
    ) -> Daemon:
        root = self.base / (name or f"machine{len(self.daemons) + 1}")
        d: Daemon
        if process or env:
            d = DaemonProcess(root, extra_config=extra_config, env=env)
        else:
            d = ThreadedDaemon(root, extra_config=extra_config)
        self.daemons.append(d)
        return d

    def start(self, extra_config: str, **kw: Any) -> Daemon:
        return self.spawn(extra_config, **kw).start()

    def close(self) -> None:
        for d in self.daemons:
            try:
                if d.alive():
                    d.stop()
            finally:
                d.cleanup()


async def sync_status(d: Daemon) -> dict[str, Any]:
    async with d.client("probe") as c:
        return await c.call("sync_status")


async def wait_online(d: Daemon, within: float = CONVERGE_S) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await sync_status(d)
        return status if status["postgres"] and status["postgres"]["reachable"] else None

    return await wait_for(probe, within=within, what=f"{d.root.name} to reach Postgres")


class Replica:
    """An in-process replica: a replicated :class:`Store` and its :class:`Replicator` task."""

    def __init__(
        self,
        path: Path,
        dsn: str,
        schema: str,
        *,
        machine: str,
        pull_interval_s: float = 300.0,
        max_backoff_s: float = 10.0,
        heartbeat_s: float = 5.0,
    ) -> None:
        self.path = path
        self.dsn = dsn
        self.schema = schema
        self.machine = machine
        self.pull_interval_s = pull_interval_s
        # The shipped timers by default (R5 heals by waking the replicator); a test may shorten them.
        self.max_backoff_s = max_backoff_s
        self.heartbeat_s = heartbeat_s
        self.store = Store(path, machine=machine, replicated=True)
        self.replicator: Replicator | None = None
        self.task: asyncio.Task[None] | None = None

    def open(self) -> Replica:
        self.store = Store(self.path, machine=self.machine, replicated=True)
        self.store.open()
        return self

    def start(self) -> Replica:
        """Start replicating (a fresh Replicator, as after a reconnect or a restart)."""
        assert self.task is None
        self.replicator = Replicator(
            self.store, dsn=self.dsn, password=None, schema=self.schema, pull_interval_s=self.pull_interval_s,
            max_backoff_s=self.max_backoff_s,
            heartbeat_s=self.heartbeat_s,
        )  # fmt: skip
        self.store.add_listener(self.replicator.wake)
        self.task = asyncio.create_task(self.replicator.run(), name=f"replicator-{self.machine}")
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            done, _ = await asyncio.wait([self.task], timeout=10)
            assert done, f"the replicator of {self.machine} ignored its cancellation"
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        # The old replicator's wake-up stays registered with the store; it wakes nobody any more.
        self.replicator = None

    async def close(self) -> None:
        await self.stop()
        self.store.close()

    async def wait_online(self, within: float = CONVERGE_S) -> None:
        await wait_for(
            lambda: self.replicator is not None and self.replicator.state.online,
            within=within,
            what=f"{self.machine} to reach Postgres",
        )


@dataclass(frozen=True)
class Intent:
    """One acknowledged write of one field: ``machine`` indexes the list of stores it was made on."""

    machine: int
    entity_id: str
    field: str
    value: Any
    unique: bool = True  # False for values other writes may repeat (an enum): "applied twice" is moot


def conflict_values(path: Path) -> dict[tuple[str, str], list[Any]]:
    """(entity id, field) → the local values a store kept in conflict records (open or resolved)."""
    out: dict[tuple[str, str], list[Any]] = {}
    conn = store_connect(path)
    try:
        for kind, fields, local_op in conn.execute("SELECT kind, fields, local_op FROM conflicts"):
            op = json.loads(local_op)
            if kind == "duplicate":
                kept = [(k, c["new"]) for k, c in op["changes"].items()]
            else:
                kept = [(k, c["local"]) for k, c in json.loads(fields).items()]
            for k, value in kept:
                out.setdefault((op["entity_id"], k), []).append(value)
                if k == "metadata" and isinstance(value, dict):  # each key is a field of its own
                    for mk, mv in value.items():
                        out.setdefault((op["entity_id"], f"metadata.{mk}"), []).append(mv)
    finally:
        conn.close()
    return out


async def assert_no_lost_intent(intents: list[Intent], stores: list[Path], dsn: str, schema: str) -> None:
    """Every acknowledged write reached the hub exactly once, is kept as a conflict on its machine, or
    was superseded by a later write of the same machine to the same field.

    "Reached the hub" means some accepted change set the field to the write's value: later writes may
    have superseded it since. A field ``metadata.<key>`` is one metadata key (they merge one by one).
    ``intents`` are in acknowledgement order. Values must be unique per write for "exactly once" to
    mean anything.
    """
    rows = await hub_fetch(dsn, f"SELECT entity_id, changes::text FROM {schema}.changes")
    applied: dict[tuple[str, str], list[Any]] = {}
    for entity_id, changes in rows:
        for k, c in json.loads(changes).items():
            applied.setdefault((entity_id, k), []).append(c.get("new"))
            old, new = c.get("old") or {}, c.get("new") or {}
            if k == "metadata" and isinstance(old, dict) and isinstance(new, dict):
                # Metadata merges key by key (SPEC §5.4): a key "reached the hub" when a change set it.
                for mk in new.keys() - {mk for mk in old if old[mk] == new.get(mk)}:
                    applied.setdefault((entity_id, f"metadata.{mk}"), []).append(new[mk])
    kept = [conflict_values(p) for p in stores]
    last = {(i.machine, i.entity_id, i.field): n for n, i in enumerate(intents)}
    lost, doubled = [], []
    for n, intent in enumerate(intents):
        key = (intent.entity_id, intent.field)
        times = applied.get(key, []).count(intent.value)
        superseded = last[(intent.machine, intent.entity_id, intent.field)] > n
        if times > 1 and intent.unique:
            doubled.append(intent)
        elif times == 0 and not superseded and intent.value not in kept[intent.machine].get(key, []):
            lost.append(intent)
    assert not lost, f"{len(lost)} of {len(intents)} acknowledged writes lost, e.g. {lost[:5]}"
    assert not doubled, f"{len(doubled)} writes applied more than once, e.g. {doubled[:5]}"
    twice = await hub_fetch(
        dsn, f"SELECT op_id FROM {schema}.changes WHERE op_id IS NOT NULL GROUP BY op_id HAVING count(*) > 1"
    )
    assert not twice, f"operations applied twice: {twice[:5]}"


@dataclass
class Outcome:
    writer: str
    phase: str
    result: dict[str, Any]


@dataclass
class Workload:
    """Writers on several daemons: creates and updates with unique values, every answer kept."""

    tag: str
    phase: str = "online"
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # id -> title of every acknowledged create
    mismatches: int = 0

    def acked(self, phase: str) -> int:
        return sum(1 for o in self.outcomes if o.phase == phase)

    async def writer(self, name: str, machine: int, c: StatusdClient, shared_id: str | None = None) -> None:
        mine: list[dict[str, Any]] = []
        for n in itertools.count():
            if self.stop.is_set():
                return
            phase = self.phase
            value = f"{self.tag}-{name}-{n}"
            try:
                if n % 3 == 0 or not mine:
                    result = await c.call("create_work_item", item_type="task", title=value)
                    self.created[result["id"]] = value
                    self.intents.append(Intent(machine, result["id"], "title", value))
                    mine.append(result)
                elif n % 3 == 1 or shared_id is None:
                    item = mine[n % len(mine)]
                    result = await c.call("update_work_item", id=item["id"], version=item["version"], description=value)
                    self.intents.append(Intent(machine, item["id"], "description", value))
                    mine[n % len(mine)] = result
                else:  # everyone edits the same field of one shared item: merges and conflicts
                    current = await c.call("query_work_item", id=shared_id)
                    result = await c.call("update_work_item", id=shared_id, version=current["version"], title=value)
                    self.intents.append(Intent(machine, shared_id, "title", value))
            except VersionMismatchError:
                self.mismatches += 1  # not acknowledged: nothing was promised
                continue
            assert result["success"] is True
            # A write that began in one phase and ended in another says nothing about either.
            self.outcomes.append(Outcome(name, phase if phase == self.phase else "transition", result))


async def found(c: StatusdClient, ident: str) -> bool:
    """Does this daemon's store have the work item yet?"""
    try:
        await c.call("query_work_item", id=ident)
    except NotFoundError:
        return False
    return True


def local_version(path: Path, ident: str) -> int | None:
    rows = store_rows(path, "SELECT version FROM work_items WHERE id = ?", ident)
    return int(rows[0][0]) if rows else None


class Machine:
    """An in-process replica with its tool dispatcher, optionally reaching the hub through a proxy."""

    def __init__(
        self, root: Path, name: str, dsn: str, schema: str, proxy: TcpProxy | None = None, timeout_s: float = 5.0
    ) -> None:
        self.proxy = proxy
        self.replica = Replica(root / f"{name}.sqlite3", proxy.dsn_for(dsn) if proxy else dsn, schema, machine=name)
        self.replica.open().start()
        self.service = Service(self.replica.store, replicator=self.replica.replicator, confirm_timeout_s=timeout_s)

    async def call(self, tool: str, client: str = "c", **args: Any) -> dict[str, Any]:
        outcome = await self.service.call(tool, args, client=client)
        return dict(outcome.payload)

    async def close(self) -> None:
        await self.replica.close()
        if self.proxy is not None:
            self.proxy.close()
