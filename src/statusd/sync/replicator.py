"""The sync loop (SPEC §5): push the outbox to the hub, pull other machines' changes, survive outages.

One task owns the hub connection and does all pushing and pulling, so operations reach the hub in
outbox order with at most one in flight per entity. A second connection only LISTENs (wake-ups)
and is health-checked by a heartbeat. Every failure that can pass is retried with backoff and
jitter; local work never waits on any of this except a confirmed write, and that only up to
``confirm_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from statusd.models import now_iso
from statusd.store import Store, WriteContext, apply, outbox
from statusd.sync import pg_schema
from statusd.sync.confirmations import Confirmations, Ticket, Verdicts
from statusd.sync.errors import describe, is_rejection, is_transient, map_hub_error

log = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    """Die here, as ``kill -9`` would, when ``STATUSD_CRASH_AT`` names this point (fault-injection tests)."""
    if os.environ.get("STATUSD_CRASH_AT") == name:
        log.error("crash point %s reached; exiting abruptly", name)
        os._exit(137)


PUSH_BATCH = 200
PULL_BATCH = 1000
CREATE_RACE_RETRIES = 3
HELD_BACK_FIRST_S = 0.05  # re-pull soon when an open transaction held committed changes back
HELD_BACK_MAX_S = 2.0
HEARTBEAT_S = 5.0
HEARTBEAT_TIMEOUT_S = 3.0
STALE_AFTER_S = 30 * 60
OWN_ECHOES_BEFORE_SAVING = PULL_BATCH  # a cursor kept in memory is stored at least this often


@dataclass
class SyncState:
    online: bool = False
    down_since: str | None = None
    last_error: str | None = None
    last_push_at: str | None = None
    last_pull_at: str | None = None
    last_pull_monotonic: float | None = None
    hub_schema_version: int | None = None
    paused_reason: str | None = None
    pushed: int = 0
    pulled: int = 0
    bootstrap: dict[str, Any] = field(default_factory=dict)


class Replicator:
    def __init__(
        self,
        store: Store,
        *,
        dsn: str,
        password: str | None,
        schema: str,
        pull_interval_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        command_timeout_s: float = 10.0,
        max_backoff_s: float = 10.0,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.store = store
        self.dsn = dsn
        self.password = password
        self.schema = pg_schema.check_schema_name(schema)
        self.pull_interval_s = pull_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.max_backoff_s = max_backoff_s
        self.heartbeat_s = heartbeat_s
        self.state = SyncState(down_since=now_iso())
        self._wake = asyncio.Event()
        self._pull_wanted = asyncio.Event()
        self.confirmations = Confirmations()
        # Where pulling has got to when only this machine's own changes came back since the last
        # write: kept in memory (no transaction just to move past our own echo) and stored with the
        # next write; after a restart those echoes are read again and skipped again.
        self._cursor: str | None = None
        self._conn: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._stopping = False
        self._served = False  # a push and a pull succeeded since the last error
        self._started = time.monotonic()
        # Called on the loop thread as the hub is lost (False, reason) or reached (True, None).
        self.state_listeners: list[Callable[[bool, str | None], None]] = []

    # --- the daemon's side ---------------------------------------------------------------------

    def wake(self, *_: object) -> None:
        self._wake.set()

    def request_pull(self) -> bool:
        """Pull at the loop's next turn (the scheduled safety net); return whether the hub is online."""
        self._pull_wanted.set()
        self._wake.set()
        return self.state.online

    def open_ticket(self, ctx: WriteContext) -> Ticket | None:
        """Before a write whose caller will wait: register it (None when the hub is unreachable)."""
        return self.confirmations.open(ctx) if self.state.online else None

    def close_ticket(self, ticket: Ticket) -> None:
        self.confirmations.close(ticket)
        self._wake.set()

    async def confirm(self, ticket: Ticket, timeout_s: float) -> Verdicts:
        """Push the ticket's operations now and wait for their verdicts (SPEC §5.3)."""
        self._wake.set()
        return await self.confirmations.wait(ticket, timeout_s)

    def warnings(self, *, write: bool) -> list[str]:
        out = []
        if not self.state.online:
            out.append("database_unavailable: working from the local store" + self._since())
            if write:
                out.append("queued_for_sync: the change will be sent when Postgres is back")
        if self.state.paused_reason:
            out.append(f"sync_paused: {self.state.paused_reason}")
        stale = self._stale_minutes()
        if stale is not None:
            out.append(f"stale: last pull {stale} min ago")
        return out

    def _since(self) -> str:
        return f" (since {self.state.down_since})" if self.state.down_since else ""

    def _stale_minutes(self) -> int | None:
        last = self.state.last_pull_monotonic
        age = time.monotonic() - (last if last is not None else self._started)
        return int(age // 60) if age > STALE_AFTER_S else None

    def summary(self) -> dict[str, Any]:
        s = self.state
        return {
            "reachable": s.online,
            "down_since": None if s.online else s.down_since,
            "last_error": s.last_error,
            "last_push_at": s.last_push_at,
            "last_pull_at": s.last_pull_at,
            "paused_reason": s.paused_reason,
            "hub_schema_version": s.hub_schema_version,
            "hub_schema_latest": pg_schema.LATEST_VERSION,
            "pushed": s.pushed,
            "pulled": s.pulled,
            "bootstrap": s.bootstrap or None,
        }

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled: connect, catch up, then push and pull as woken."""
        self._started = time.monotonic()
        backoff = 0.2
        while not self._stopping:
            try:
                await self.connect()
                await self._serve()
            except asyncio.CancelledError:
                self.confirmations.went_away("the sync loop stopped before Postgres confirmed")
                raise
            except pg_schema.SchemaTooNewError as exc:
                self._went_down(str(exc))
                self.state.paused_reason = str(exc)
                log.error("sync paused: %s", exc)
                await self._sleep(60.0)
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # The driver turned our cancellation into a connection error: stop, don't retry.
                    self.confirmations.went_away("the sync loop stopped before Postgres confirmed")
                    raise asyncio.CancelledError from exc
                if not is_transient(exc):
                    log.error("sync error: %s", describe(exc, self.password))
                self._went_down(describe(exc, self.password))
                if self._served:  # it worked for a while: this is a new outage, start again quickly
                    backoff, self._served = 0.2, False
                await self._sleep(backoff * (0.5 + random.random()))
                # Not after a successful connect: an error right after one (a hub fault, a refused
                # login) would otherwise reconnect several times a second forever.
                backoff = min(backoff * 2, self.max_backoff_s)
            finally:
                await self.close()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    def _went_down(self, reason: str) -> None:
        if self.state.online:
            log.warning("Postgres unreachable: %s; working locally", reason)
            self.state.down_since = now_iso()
            self._tell(False, reason)
        elif self.state.last_error is None:  # never reached since start-up: say so once
            log.warning("Postgres not reachable: %s; working locally and retrying", reason)
            self._tell(False, reason)
        self.state.online = False
        self.state.last_error = reason
        self.confirmations.went_away("the connection to Postgres was lost before it confirmed")

    async def connect(self) -> None:
        kwargs: dict[str, Any] = {"timeout": self.connect_timeout_s, "command_timeout": self.command_timeout_s}
        if self.password is not None:
            kwargs["password"] = self.password
        self._conn = await asyncpg.connect(self.dsn, **kwargs)
        self.state.hub_schema_version = await pg_schema.migrate(self._conn, self.schema)
        self._listener = await asyncpg.connect(self.dsn, **kwargs)
        await self._listener.add_listener(pg_schema.channel(self.schema), self._notified)
        self.state.paused_reason = None
        self.state.online = True
        self.state.last_error = None
        self.state.down_since = None
        log.info("connected to Postgres (schema %s v%s)", self.schema, self.state.hub_schema_version)
        self._tell(True, None)

    def _tell(self, online: bool, reason: str | None) -> None:
        for listener in self.state_listeners:
            try:
                listener(online, reason)
            except Exception:
                log.exception("sync state listener failed")

    def _notified(self, *_: object) -> None:
        self._pull_wanted.set()
        self._wake.set()

    async def close(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # arrives as the inner call finishes, and a stopped loop would carry on reconnecting.
        # A shutdown cancels this task again at every await (anyio scopes): ``terminate()`` is
        # synchronous, so no connection is left open for the garbage collector to find.
        conns = [c for c in (self._listener, self._conn) if c is not None]
        self._conn = self._listener = None
        try:
            for conn in conns:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await conn.close()
        finally:
            for conn in conns:
                if not conn.is_closed():
                    conn.terminate()

    async def _serve(self) -> None:
        await self._join_hub()
        self._pull_wanted.set()
        next_pull = time.monotonic()
        next_beat = time.monotonic() + self.heartbeat_s
        held_retry = 0.0
        while True:
            self._wake.clear()
            pushed = await self._push()
            now = time.monotonic()
            if self._pull_wanted.is_set() or now >= next_pull:
                self._pull_wanted.clear()
                if await self._pull():
                    # The transaction holding them back may never NOTIFY us (another project's, a
                    # reporting query): look again soon rather than at the next periodic pull.
                    held_retry = min(held_retry * 2, HELD_BACK_MAX_S) if held_retry else HELD_BACK_FIRST_S
                    next_pull = time.monotonic() + held_retry
                else:
                    held_retry = 0.0
                    next_pull = time.monotonic() + self.pull_interval_s
            self._served = True
            if now >= next_beat:
                await self._heartbeat()
                next_beat = time.monotonic() + self.heartbeat_s
            if pushed:
                continue  # more may be queued
            timeout = max(0.0, min(next_pull, next_beat) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _heartbeat(self) -> None:
        """A listener on a half-open connection hears nothing forever: prove it still answers."""
        assert self._listener is not None
        async with asyncio.timeout(HEARTBEAT_TIMEOUT_S):
            await pg_schema.ping(self._listener)

    async def _join_hub(self) -> None:
        cursor = self.store.meta("pull_cursor")
        joined = self.store.meta("hub_joined")
        if cursor is None and not self.local_has_data():
            await self.bootstrap()
        if joined is None:
            await self.store.write(apply.enqueue_initial_upload, _ctx())

    def local_has_data(self) -> bool:
        return self.store.read(outbox.has_local_data)

    async def bootstrap(self, progress: Any = None) -> int:
        """Copy every hub entity into an empty store, then start pulling after that snapshot."""
        assert self._conn is not None
        s = self.schema
        copied = 0
        async with self._conn.transaction(isolation="repeatable_read", readonly=True):
            total, cursor = await pg_schema.snapshot_start(self._conn, s)
            self.state.bootstrap = {"total": total, "copied": 0}
            await self.store.write(outbox.drop_default_configuration, _ctx())
            last_id = ""
            writing: asyncio.Future[None] | None = None
            while True:
                # Fetch and decode the next page while the writer thread stores the previous one.
                rows = await pg_schema.entity_page(self._conn, s, last_id, 5000)
                batch = [(r[1], r[0], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]
                if writing is not None:
                    await writing
                    if progress is not None:
                        progress(copied, total)
                if not rows:
                    break
                writing = asyncio.ensure_future(self.store.write(apply.copy_states, _ctx(), batch))
                copied += len(rows)
                last_id = rows[-1][0]
                self.state.bootstrap["copied"] = copied
        await self.store.write(apply.recompute_depths, _ctx())
        await self.store.write(outbox.write_meta, _ctx(), "pull_cursor", cursor)
        self._cursor = None
        return copied

    async def _push(self) -> bool:
        """Push one batch of the outbox; return whether anything was pushed."""
        assert self._conn is not None
        ops = self.store.read(outbox.pending_ops, PUSH_BATCH)
        if not ops:
            return False
        for op in ops:
            op["strict"] = self.confirmations.is_strict(op["op_id"])
        verdicts = await self._judge(ops)
        crash_point("after_hub_commit")
        settled: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for op, verdict in zip(ops, verdicts, strict=True):
            if op["strict"] and not self.confirmations.judged(op["op_id"]):
                # Its caller gave up waiting and was told "queued": from now on it is a queued write.
                op["strict"] = False
                if verdict["verdict"] in ("rejected", "cycle"):
                    continue  # the hub did not record a rejection: push it again, to merge
            settled.append((op, verdict))
        outcomes = await self.store.write(
            apply.settle, _ctx(), [op for op, _ in settled], [verdict for _, verdict in settled]
        )
        self.state.pushed += len(settled)
        self.state.last_push_at = now_iso()
        for outcome in outcomes:
            self.confirmations.deliver(outcome)
        return True

    async def _send(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One round trip: the hub's verdicts for ``ops``, in order (raises what the hub raised)."""
        assert self._conn is not None
        machine = self.store.machine
        body = json.dumps([{**op, "machine": machine} for op in ops], default=str)
        for attempt in range(CREATE_RACE_RETRIES + 1):
            try:
                raw = await pg_schema.apply_ops(self._conn, self.schema, body)
                break
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                # Another machine created the same entity (a deterministic id, or a vendor name) in a
                # transaction that committed while ours waited: now visible, it takes the normal path.
                # Or two batches locked the same rows in opposite orders: Postgres rolled ours back
                # whole, so sending it again is safe (and no reason to call the hub unreachable).
                if attempt == CREATE_RACE_RETRIES:
                    raise
        verdicts: list[dict[str, Any]] = json.loads(raw)
        return verdicts

    async def _judge(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The hub's verdicts; an op the hub refuses for good gets an ``invalid`` verdict of its own.

        A refused batch is rolled back whole, so it is halved and each half sent again, in order,
        until the culprits stand alone: the good ops still go through (SPEC §5.2), and one bad op
        in 200 costs about 16 round trips rather than 200.
        """
        try:
            return await self._send(ops)
        except Exception as exc:
            if not is_rejection(exc):
                raise
            if len(ops) == 1:
                return [await self._invalid(ops[0], exc)]
        half = len(ops) // 2
        return await self._judge(ops[:half]) + await self._judge(ops[half:])

    async def _invalid(self, op: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """The verdict for an op the hub refused: why, and the hub's current state of its entity."""
        assert self._conn is not None
        reason = describe(map_hub_error(exc, self.password), self.password)
        log.error("the hub refused operation %s on %s %s for good: %s", op["op_id"], op["entity"],
                  op["entity_id"], reason)  # fmt: skip
        verdict: dict[str, Any] = {
            "verdict": "invalid", "entity_id": op["entity_id"], "reason": reason, "fields": sorted(op["changes"]),
        }  # fmt: skip
        verdict.update(await pg_schema.entity_state(self._conn, self.schema, op["entity_id"]) or {})
        return verdict

    async def _pull(self) -> bool:
        """Pull every deliverable change; return whether committed changes were held back.

        A change is deliverable once no transaction older than its own is still running
        (``txid < pg_snapshot_xmin``): delivering it earlier would move the cursor past a slower
        transaction that commits later, and that transaction's changes would never be pulled.
        """
        assert self._conn is not None
        s = self.schema
        while True:
            cursor = self._cursor or self.store.meta("pull_cursor") or "0:0"
            txid, _, seq = cursor.partition(":")
            rows = await pg_schema.pull_page(self._conn, s, txid, int(seq), PULL_BATCH)
            ready = [r for r in rows if r[12]]  # a prefix: rows are ordered by txid
            if ready:
                new_cursor = f"{ready[-1][0]}:{ready[-1][1]}"
                own = self.store.read(outbox.known_op_ids, [r[7] for r in ready if r[7]])
                changes = [_change(r) for r in ready if r[7] is None or r[7] not in own]
                if changes or len(own) >= OWN_ECHOES_BEFORE_SAVING:
                    if await self.store.write(apply.apply_pulled, _ctx(), changes, new_cursor) < 0:
                        return True  # an import is running: pull again soon, once it is over
                    self._cursor = None
                else:
                    self._cursor = new_cursor  # only our own changes came back: nothing to write
                self.state.pulled += len(changes)
            self.state.last_pull_at = now_iso()
            self.state.last_pull_monotonic = time.monotonic()
            if len(ready) < len(rows) or len(rows) < PULL_BATCH:
                return len(ready) < len(rows)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()


def _change(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "entity": r[2],
        "entity_id": r[3],
        "version": r[4],
        "data": json.loads(r[5]),
        "changes": json.loads(r[6]),
        "op_id": r[7],
        "actor": r[8],
        "at": r[9],
        "machine": r[10],
        "via": r[11],
    }


def _ctx() -> WriteContext:
    return WriteContext(actor="statusd", via="sync")
