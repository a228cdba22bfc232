"""The mirror's base (the last render, what a human's next save is compared with), kept packed.

A ``Rendered`` of 10,000 open items is ~100,000 small objects: ~6 MB, and worse, they are scattered
through the allocator's arenas among the snapshot's short-lived rows and whatever the daemon
allocated meanwhile (the SDK loads while the first render runs), so freeing them later returns
little to the system (SPEC §11 P9). Between saves the mirror only needs the base's banner; the rest
is needed when a save is imported. So the work item tree and the id map are kept as two marshal
blobs (large single allocations, returned whole when replaced) and rebuilt, equal to the original,
only to import a save or to compare a file at start-up.
"""

from __future__ import annotations

import marshal
import pickle
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from statusd.store.db import WriteContext
from statusd.sync.markdown_import import ImportResult, apply_document
from statusd.sync.markdown_model import Document, MirrorState, WorkItem
from statusd.sync.mirror_state import Rendered

_Node = tuple[Any, ...]  # (sid, title, item_type, priority, status, line, children)


@dataclass(frozen=True)
class PackedBase:
    """A ``Rendered`` with its work item tree and ids marshalled; ``unpack`` gives back an equal one."""

    banner: str | None
    rest: bytes  # pickle: the state without its work items (vendors, deployments, ...: a few dozen objects)
    items: bytes  # marshal: the work item tree as nested tuples
    ids: bytes  # marshal: section → short id → (id, version)
    sessions_alias: bool  # ids["sessions"] is ids["work_items"] (one map for both sections)


def pack(rendered: Rendered) -> PackedBase:
    ids = dict(rendered.ids)
    alias = ids.get("sessions") is ids.get("work_items") and "sessions" in ids
    if alias:
        del ids["sessions"]
    # Even the small sections are packed: a few objects kept from among a snapshot's short-lived
    # ones would each hold an allocator arena (1 MB) alive. The pickle never leaves this process.
    return PackedBase(
        banner=rendered.state.banner,
        rest=pickle.dumps(replace(rendered.state, work_items=()), protocol=pickle.HIGHEST_PROTOCOL),
        items=marshal.dumps(_nodes(rendered.state.work_items)),
        ids=marshal.dumps(ids),
        sessions_alias=alias,
    )


def unpack(packed: PackedBase) -> Rendered:
    ids: dict[str, dict[str, tuple[str, int]]] = marshal.loads(packed.ids)
    if packed.sessions_alias:
        ids["sessions"] = ids["work_items"]
    rest: MirrorState = pickle.loads(packed.rest)
    return Rendered(state=replace(rest, work_items=_items(marshal.loads(packed.items))), ids=ids)


def _nodes(items: tuple[WorkItem, ...]) -> tuple[_Node, ...]:
    # Leaves (most items) skip the call: an empty tuple is the same object either way.
    return tuple(
        (n.sid, n.title, n.item_type, n.priority, n.status, n.line, _nodes(n.children) if n.children else ())
        for n in items
    )


def _items(nodes: tuple[_Node, ...]) -> tuple[WorkItem, ...]:
    return tuple(
        WorkItem(sid=s, title=t, item_type=k, priority=p, status=st, children=_items(c) if c else (), line=ln)
        for s, t, k, p, st, ln, c in nodes
    )


def apply_packed(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    base: PackedBase,
    doc: Document,
    pending: dict[tuple[str, str, str | None], list[str]],
) -> tuple[ImportResult, PackedBase | None]:
    """``apply_document`` against a packed base (writer thread); the next base comes back packed."""
    result = apply_document(conn, ctx, unpack(base), doc, pending)
    after, result.base = result.base, None
    return result, (None if after is None else pack(after))
