"""Dependency edges of an import: "waits for" pairs added as statusd ``depends_on`` edges.

Cycles are checked in memory against every live edge (both statusd types) plus the ones this
import adds, so a 10,000-edge import needs no recursive query per edge.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from statusd.store import entities as ent
from statusd.store import imports
from statusd.store.db import WriteContext
from statusd.store.dependencies import edge_id
from statusd.store.entities import DEPENDENCY
from statusd.sync.importers.plan import PlannedEdge


def _waits_graph(conn: sqlite3.Connection) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, b, kind in imports.live_edges(conn):
        waiter, prereq = (a, b) if kind == "depends_on" else (b, a)
        graph.setdefault(waiter, set()).add(prereq)
    return graph


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
    planned: list[PlannedEdge],
    ids: dict[str, str],
    warnings: list[str],
    on_edge: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Add the planned edges; return (created, already there). Never restores or removes one."""
    created = unchanged = 0
    graph = _waits_graph(conn)
    for n, edge in enumerate(planned, start=1):
        waiter, prereq = ids[edge.waiter], ids[edge.prereq]
        ident = edge_id(waiter, prereq, "depends_on")
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
            ent.insert(conn, ctx, DEPENDENCY, values, ident)
            graph.setdefault(waiter, set()).add(prereq)
            created += 1
        if on_edge is not None:
            on_edge(n)
    return created, unchanged
