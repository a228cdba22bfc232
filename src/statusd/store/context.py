"""What every write transaction carries: who writes, how the change arrived, what it has done."""

from __future__ import annotations

from dataclasses import dataclass, field

from statusd.models import Via, now_iso


@dataclass
class WriteContext:
    """Who is writing, how the change arrived, and what the transaction has done so far."""

    actor: str
    via: Via = "tool"
    machine: str = ""
    replicated: bool = False
    now: str = field(default_factory=now_iso)
    # Set when a caller will wait for the hub's verdict (SPEC §5.3): a write that changes nothing
    # locally then still queues a check, so "confirmed" always means the hub holds the value.
    confirming: bool = False
    # Set by the loop when the caller was cancelled: long transactions (imports) check it and roll
    # back, so a cancelled call leaves nothing behind (SPEC §4.4).
    cancel_requested: bool = False
    # The import run this transaction is a chunk of: its outbox rows carry it and are held back
    # from the hub until the run is done (docs/decisions.md, 2026-11-30).
    import_run: str | None = None
    # False for an import's intermediate chunks: committed without the WAL fsync (synchronous=NORMAL
    # for that one transaction). A power cut may lose the newest of them, never corrupt the store;
    # a run without its final, durable 'done' commit is rolled back at the next open anyway.
    durable: bool = True
    op_ids: list[str] = field(default_factory=list)
    changed_entities: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
