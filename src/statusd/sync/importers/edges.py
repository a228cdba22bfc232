"""Dependency edges of an import: "waits for" pairs added as statusd ``depends_on`` edges.

Cycles are checked in memory against every live edge (both statusd types) plus the ones this
import adds, so a 10,000-edge import needs no recursive query per edge. The graph is read once,
outside the writer; each chunk first catches up with edges other writers added since (from the
history), so a cycle closed between two chunks is still seen. Edges removed since stay in the
graph: that can only make the check stricter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from statusd.store import entities as ent
from statusd.store import imports
from statusd.store.db import WriteContext
from statusd.store.dependencies import edge_id
from statusd.store.entities import DEPENDENCY
from statusd.sync.importers.plan import PlannedEdge


def waits_graph(conn: sqlite3.Connection) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    _add(graph, imports.live_edges(conn))
    return graph


def _add(graph: dict[str, set[str]], rows: Iterable[tuple[str, str, str]]) -> None:
    for a, b, kind in rows:
        waiter, prereq = (a, b) if kind == "depends_on" else (b, a)
        graph.setdefault(waiter, set()).add(prereq)


def catch_up(conn: sqlite3.Connection, graph: dict[str, set[str]], mark: int) -> int:
    """Add the live edges changed since history seq ``mark``; return the new mark."""
    last, rows = imports.dependency_changes_since(conn, mark)
    _add(graph, rows)
    return last


def _reaches(graph: dict[str, set[str]], start: str, target: str) -> bool:
    stack, seen = [start], {start}
    while stack:
        node = stack.pop()
        if node == target:
            return True
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def apply(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    planned: Sequence[PlannedEdge],
    ids: dict[str, str],
    fresh: set[str],
    graph: dict[str, set[str]],
    warnings: list[str],
) -> tuple[list[str], int]:
    """Add the planned edges; return (ids of the edges created, how many were already there).
    Never restores or removes one. ``fresh``: items this run created, which have no edges yet
    (the import's guards refuse other writers' edges on them; the plan has each pair once)."""
    new: list[tuple[dict[str, Any], str]] = []
    unchanged = 0
    for edge in planned:
        waiter, prereq = ids[edge.waiter], ids[edge.prereq]
        ident = edge_id(waiter, prereq, "depends_on")
        if waiter in fresh and prereq in fresh:
            row = mirrored = None
        else:
            row = ent.get(conn, DEPENDENCY, ident)
            mirrored = ent.get(conn, DEPENDENCY, edge_id(prereq, waiter, "blocks"))
        if (row and row["deleted_at"] is None) or (mirrored and mirrored["deleted_at"] is None):
            unchanged += 1
        elif row is not None:
            warnings.append(f"{edge.origin}: edge {edge.waiter} -> {edge.prereq} was removed in statusd; not restored")
        elif _reaches(graph, prereq, waiter):
            warnings.append(
                f"{edge.origin}: {edge.kind} edge {edge.waiter} -> {edge.prereq} skipped: it would close a cycle"
            )
        else:
            values = {"work_item_id": waiter, "depends_on_id": prereq, "dependency_type": "depends_on"}
            new.append((values, ident))
            graph.setdefault(waiter, set()).add(prereq)
    ent.insert_many(conn, ctx, DEPENDENCY, new)
    return [ident for _, ident in new], unchanged
