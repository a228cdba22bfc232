"""The mirror's base (the last render, what a human's next save is compared with), kept packed.

A ``Rendered`` of 10,000 open items is ~100,000 small objects (~6 MB), and worse, they sit in the
allocator's 1 MB arenas among the snapshot's short-lived rows: when the rows go, the arenas stay,
held by the base (SPEC §11 P9). The mirror needs the base only to import a save or to compare a
file at start-up, so between saves it keeps one bytes object and rebuilds an equal ``Rendered``
from it when needed.
"""

from __future__ import annotations

import marshal
import pickle
import sqlite3
from dataclasses import replace
from typing import Any, NewType

from statusd.store.db import WriteContext
from statusd.sync.markdown_import import ImportResult, apply_document
from statusd.sync.markdown_model import Document, MirrorState, WorkItem
from statusd.sync.mirror_state import Rendered

_Node = tuple[Any, ...]  # (sid, title, item_type, priority, status, line, children)


# One bytes object (allocated outside the small-object arenas): the banner, the state without its
# work items (pickled: a few dozen vendors, deployments, ...), the work item tree as nested tuples,
# the id map, and whether ids["sessions"] is ids["work_items"]. Even the small sections are packed:
# each object kept from among a snapshot's short-lived ones would hold a 1 MB arena alive. The
# pickle never leaves this process.
PackedBase = NewType("PackedBase", bytes)


def pack(rendered: Rendered) -> PackedBase:
    """``rendered`` as one blob; ``unpack`` gives back an equal ``Rendered``."""
    ids = dict(rendered.ids)
    alias = ids.get("sessions") is ids.get("work_items") and "sessions" in ids
    if alias:
        del ids["sessions"]
    rest = pickle.dumps(replace(rendered.state, work_items=()), protocol=pickle.HIGHEST_PROTOCOL)
    return PackedBase(marshal.dumps((rendered.state.banner, rest, _nodes(rendered.state.work_items), ids, alias)))


def unpack(packed: PackedBase) -> Rendered:
    _banner, rest, nodes, ids, alias = marshal.loads(packed)
    if alias:
        ids["sessions"] = ids["work_items"]
    state: MirrorState = pickle.loads(rest)
    return Rendered(state=replace(state, work_items=_items(nodes)), ids=ids)


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
