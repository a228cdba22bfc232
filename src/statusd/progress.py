"""Progress for long work: one reporter shape, and a batch runner that reports after each batch.

A reporter is ``progress(done, total)``, called on the event loop (work on the writer thread hands
it over with ``loop.call_soon_threadsafe``); the transport turns it into ``notifications/progress``
for a caller that sent a ``progressToken``. Long work that can stop half-way (archiving today;
migration as it lands) runs as a series of short transactions through :func:`in_batches`, so a
cancelled call stops between batches: the batch in flight commits, no later one starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

Progress = Callable[[int, int], None]


async def in_batches(
    items: Sequence[T],
    size: int,
    work: Callable[[Sequence[T]], Awaitable[int]],
    progress: Progress | None = None,
) -> int:
    """Run ``work`` on consecutive batches of ``items``; return the sum of what it returns."""
    total = 0
    for start in range(0, len(items), size):
        total += await work(items[start : start + size])
        if progress is not None:
            progress(min(start + size, len(items)), len(items))
    return total
