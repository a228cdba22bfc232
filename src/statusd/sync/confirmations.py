"""The one registry of confirmed writes (SPEC §5.3): is a caller waiting for this operation?

A caller opens a :class:`Ticket` *before* its write transaction; the store appends each operation
id to the ticket's context as it queues the operation, before the commit. So by the time the push
loop can read an operation from the outbox, the registry already knows whether a caller waits for
it, and the loop pushes it strictly (judged at the caller's version, rejected rather than merged).

Lifecycle of one operation of a waiting caller: pushed strictly → ``judged`` (the hub answered;
from here the caller hears the verdict even past its timeout, because a rejection withdraws the
write) → ``deliver`` (the verdict is recorded in the store) → the caller wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from statusd.store import WriteContext

# Verdicts that leave the caller's write queued rather than judged, and why.
_QUEUED = {
    "missing": "Postgres had not seen this entity yet; it is sent whole first",
    "folded": "folded into a conflict recorded earlier",
}


@dataclass
class Ticket:
    ctx: WriteContext
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: bool = True  # False once the caller stopped waiting: its operations are queued writes
    judging: set[str] = field(default_factory=set)  # judged strictly, verdict not yet recorded
    lost: str | None = None  # why the verdict will not come (the hub went away)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def complete(self) -> bool:
        return all(op_id in self.outcomes for op_id in self.ctx.op_ids)


@dataclass
class Verdicts:
    """What a waiting caller learns: every outcome, or why the write stays queued."""

    outcomes: list[dict[str, Any]] | None
    queued_because: str | None = None


class Confirmations:
    def __init__(self) -> None:
        self._open: list[Ticket] = []

    def open(self, ctx: WriteContext) -> Ticket:
        ticket = Ticket(ctx)
        self._open.append(ticket)
        return ticket

    def close(self, ticket: Ticket) -> None:
        ticket.waiting = False
        with contextlib.suppress(ValueError):
            self._open.remove(ticket)

    def _ticket(self, op_id: str) -> Ticket | None:
        for ticket in self._open:
            if ticket.waiting and op_id in ticket.ctx.op_ids:
                return ticket
        return None

    def is_strict(self, op_id: str) -> bool:
        """Push this operation strictly? (A caller is waiting for it.)"""
        return self._ticket(op_id) is not None

    def judged(self, op_id: str) -> bool:
        """The hub answered a strict push; True if its caller still waits and will hear the verdict.

        Called synchronously right after the answer, so a caller cannot time out in between.
        """
        ticket = self._ticket(op_id)
        if ticket is None:
            return False
        ticket.judging.add(op_id)
        return True

    def deliver(self, outcome: dict[str, Any]) -> None:
        op_id = outcome["op_id"]
        for ticket in self._open:
            if op_id in ticket.judging or (ticket.waiting and op_id in ticket.ctx.op_ids):
                ticket.judging.discard(op_id)
                ticket.outcomes[op_id] = outcome
                ticket.progress.set()

    def went_away(self, reason: str) -> None:
        """The hub connection is gone: no verdict is coming for anything in flight."""
        for ticket in self._open:
            ticket.judging.clear()
            ticket.lost = reason
            ticket.progress.set()

    async def wait(self, ticket: Ticket, timeout_s: float) -> Verdicts:
        """Wait up to ``timeout_s`` for every operation's verdict (longer only while one is recorded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not ticket.complete():
            if ticket.lost is not None:
                return Verdicts(None, ticket.lost)
            ticket.progress.clear()
            remaining = deadline - loop.time()
            if remaining <= 0 and not ticket.judging:
                ticket.waiting = False  # from now on its operations are ordinary queued writes
                return Verdicts(None, f"Postgres did not confirm within {int(timeout_s * 1000)} ms")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if ticket.judging else remaining):
                    await ticket.progress.wait()
        outcomes = [ticket.outcomes[op_id] for op_id in ticket.ctx.op_ids]
        for o in outcomes:
            if o.get("verdict") in _QUEUED:
                ticket.waiting = False  # its operations go on as ordinary queued writes
                return Verdicts(None, _QUEUED[o["verdict"]])
        return Verdicts(outcomes)
