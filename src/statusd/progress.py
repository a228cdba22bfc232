"""Progress for long work: one callback shape, and a batch runner that reports after each batch.

Long work (archiving today; migration and imports as they land) runs as a series of short
transactions through :func:`in_batches`, so a caller's ``progressToken`` gets a notification per
batch and a cancelled call stops between batches: the batch in flight commits, no later one starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# progress(done, total, message): ``total`` None when unknown.
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


async def no_progress(done: float, total: float | None, message: str | None) -> None:
    """The progress callback of a caller that did not ask for progress."""


async def in_batches(
    items: Sequence[T],
    size: int,
    work: Callable[[Sequence[T]], Awaitable[int]],
    progress: Progress = no_progress,
    what: str = "done",
) -> int:
    """Run ``work`` on consecutive batches of ``items``; return the sum of what it returns."""
    total = 0
    for start in range(0, len(items), size):
        total += await work(items[start : start + size])
        done = min(start + size, len(items))
        await progress(done, len(items), f"{done}/{len(items)} {what}")
    return total
