"""What the daemon keeps per MCP connection beyond the SDK's session, and the fan-out to all of them.

Each connection has a :class:`Session`: the negotiated protocol version, the client's log level and
its resource subscriptions. :class:`Sessions` hears every committed store change (local writes,
pulled changes, markdown edits all pass :meth:`statusd.store.Store.write`) and, debounced, tells
each subscriber whose resource changed; it also turns sync-state changes into log messages.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from statusd.daemon.transport import LineWriter

log = logging.getLogger(__name__)

# RFC 5424 severities, lowest first (the MCP LoggingLevel scale).
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
DEFAULT_LEVEL = "info"
DEBOUNCE_S = 0.02  # a burst of commits (a batch, a pull) becomes one notification per resource
BATCH_VERSIONS = frozenset({"2025-03-26"})  # the one protocol version whose messages may be batched


class Session:
    """One connection's MCP state that the SDK does not keep for us."""

    def __init__(self) -> None:
        self.writer: LineWriter | None = None  # the connection's writer, once the connection has one
        self.protocol_version: str | None = None
        self.log_level = DEFAULT_LEVEL
        # uri -> fingerprint of what the subscriber was last told about (None: always notify)
        self.subscriptions: dict[str, str | None] = {}

    @property
    def batches(self) -> bool:
        return self.protocol_version in BATCH_VERSIONS

    @property
    def connection_logging(self) -> bool:
        """Connection-wide ``notifications/message`` exists in the handshake era only (2026-07-28 dropped it)."""
        return self.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS

    def saw_answer(self, result: Any) -> None:
        """Learn the negotiated version from the initialize result on its way out."""
        if self.protocol_version is None and isinstance(result, dict) and "serverInfo" in result:
            version = result.get("protocolVersion")
            self.protocol_version = version if isinstance(version, str) else None

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        if self.writer is None:
            return
        line = {"jsonrpc": "2.0", "method": method, "params": params}
        await self.writer.send_line(json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


class ProgressNotices:
    """``notifications/progress`` for a caller that sent a progressToken (SPEC §4.4).

    Called as ``progress(done, total)`` on the loop; :meth:`flush` before the answer so every
    notice goes out before the result. Both the fast path and the SDK path write them this way,
    so a call's progress reads the same whichever path answered it.
    """

    def __init__(self, writer: LineWriter, token: int | str) -> None:
        self.writer = writer
        self.token = token
        self.sends: list[asyncio.Task[None]] = []

    def __call__(self, done: int, total: int) -> None:
        params = {"progressToken": self.token, "progress": done, "total": total}
        line = json.dumps(
            {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}, separators=(",", ":")
        )
        self.sends.append(asyncio.get_running_loop().create_task(self.writer.send_line(line.encode() + b"\n")))

    async def flush(self) -> None:
        await asyncio.gather(*self.sends)


# The session of the connection being served (set in each connection's task; handlers inherit it).
CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar("statusd_session", default=None)

Fingerprint = Callable[[str], Awaitable[str | None]]


class Sessions:
    """Every open session; notifications that concern more than one connection start here."""

    def __init__(
        self, fingerprint: Fingerprint, open_conflicts: Callable[[], int], serving: Callable[[], bool] = lambda: True
    ) -> None:
        self._fingerprint = fingerprint
        self._serving = serving  # False while the daemon drains: reads answer "shutting down", not content
        self._open_conflicts = open_conflicts
        self.open: set[Session] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._conflicts_seen = open_conflicts()
        # 2026-07-28 clients listen (subscriptions/listen) instead of subscribing: the SDK's listen
        # handler filters this bus's events per stream; ``_listened`` is what the open streams watch.
        self.bus = InMemorySubscriptionBus()
        self._listened: dict[object, dict[str, str | None]] = {}

    def add(self, session: Session) -> None:
        self.open.add(session)

    def remove(self, session: Session) -> None:
        self.open.discard(session)

    # --- store changes -> notifications/resources/updated -----------------------------------------

    def changed(self, *_: object) -> None:
        """A store listener: schedule one flush for the burst this commit belongs to."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DEBOUNCE_S, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        if self._serving():
            self._spawn(self._flush())

    async def listen(self, uris: list[str]) -> object:
        """A listen stream opened for ``uris``: watch them until :meth:`unlisten` with the token."""
        token = object()
        self._listened[token] = {uri: await self._fingerprint(uri) for uri in uris}
        return token

    def unlisten(self, token: object) -> None:
        self._listened.pop(token, None)

    async def _flush(self) -> None:
        changed: set[str] = set()
        for watched in list(self._listened.values()):
            for uri, told in list(watched.items()):
                current = await self._fingerprint(uri)
                if current is None or current != told:
                    watched[uri] = current
                    changed.add(uri)
        for uri in sorted(changed):
            await self.bus.publish(ResourceUpdated(uri=uri))
        for session in list(self.open):
            for uri, told in list(session.subscriptions.items()):
                current = await self._fingerprint(uri)
                if current is not None and current == told:
                    continue  # committed changes elsewhere; this resource reads the same
                if uri in session.subscriptions:  # not unsubscribed meanwhile
                    session.subscriptions[uri] = current
                    await session.notify("notifications/resources/updated", {"uri": uri})
        self._check_conflicts()

    def _check_conflicts(self) -> None:
        count = self._open_conflicts()
        if count > self._conflicts_seen:
            self.log("warning", {"event": "conflicts", "open_conflicts": count, "message": f"{count} open conflicts"})
        self._conflicts_seen = count

    # --- sync state -> notifications/message --------------------------------------------------------

    def sync_state(self, online: bool, reason: str | None) -> None:
        """A replicator listener: Postgres was lost or reached again."""
        if online:
            self.log("info", {"event": "postgres_regained", "message": "Postgres is reachable; syncing"})
        else:
            self.log(
                "warning",
                {"event": "postgres_lost", "message": f"Postgres unreachable ({reason}); working locally"},
            )

    def log(self, level: str, data: dict[str, Any]) -> None:
        """Send a log message to every session whose level lets it through."""
        rank = LEVELS.index(level)
        for session in list(self.open):
            if session.connection_logging and rank >= LEVELS.index(session.log_level):
                self._spawn(
                    session.notify("notifications/message", {"level": level, "logger": "statusd", "data": data})
                )

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("sending a notification failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
