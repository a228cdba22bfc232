"""Importers for peer trackers: read a tool's files into a neutral plan, then apply it in one transaction.

``read_plan(source, path)`` is pure (it only reads files); :mod:`.apply` is the one place that
writes, so the two layers can later sit on the shared migration machinery unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from statusd.models import MAX_DEPTH
from statusd.sync.importers import backlog, beads, taskmaster
from statusd.sync.importers.plan import SOURCES, Plan, PlannedItem

READERS: dict[str, Callable[[Path], Plan]] = {
    "beads": beads.read,
    "backlog": backlog.read,
    "taskmaster": taskmaster.read,
}

__all__ = ["READERS", "SOURCES", "Plan", "read_plan"]


def read_plan(source: str, path: Path | str) -> Plan:
    """Read ``path`` with the ``source`` reader and settle keys, parents and edges the store can take."""
    reader = READERS.get(source)
    if reader is None:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    plan = reader(Path(path).expanduser())
    settle(plan)
    return plan


def settle(plan: Plan) -> None:
    """Unique keys, parents that exist and form no cycle within depth 0-4, parents before children,
    and edges between known items: everything else becomes a warning naming where it came from."""
    seen: dict[str, PlannedItem] = {}
    for item in plan.items:
        if item.key in seen:
            n = 2
            while f"{item.key}#{n}" in seen:
                n += 1
            plan.warnings.append(f"{item.origin}: id {item.source_id} repeats {seen[item.key].origin}; kept both")
            item.key = f"{item.key}#{n}"
            item.metadata["source_key"] = item.key
        seen[item.key] = item
    for item in plan.items:
        if item.parent_key is not None and item.parent_key not in seen:
            plan.warnings.append(
                f"{item.origin}: parent {item.parent_key} of {item.source_id} not found; imported at top level"
            )
            item.parent_key = None
    _break_parent_cycles(plan, seen)
    depth = _depths(plan, seen)
    plan.items.sort(key=lambda i: depth[i.key])
    kept = []
    pairs: set[tuple[str, str]] = set()
    for edge in plan.edges:
        missing = [k for k in (edge.waiter, edge.prereq) if k not in seen]
        if missing:
            plan.warnings.append(
                f"{edge.origin}: {edge.kind} edge {edge.waiter} -> {edge.prereq} skipped: {missing[0]} not found"
            )
        elif edge.waiter == edge.prereq:
            plan.warnings.append(f"{edge.origin}: {edge.kind} edge of {edge.waiter} on itself skipped")
        elif (edge.waiter, edge.prereq) not in pairs:
            pairs.add((edge.waiter, edge.prereq))
            kept.append(edge)
    plan.edges = kept


def _break_parent_cycles(plan: Plan, items: dict[str, PlannedItem]) -> None:
    for item in plan.items:
        walked = {item.key}
        node = item
        while node.parent_key is not None:
            if node.parent_key in walked:
                plan.warnings.append(
                    f"{node.origin}: parent link {node.key} -> {node.parent_key} closes a cycle; dropped"
                )
                node.parent_key = None
                break
            walked.add(node.parent_key)
            node = items[node.parent_key]


def _depths(plan: Plan, items: dict[str, PlannedItem]) -> dict[str, int]:
    depth: dict[str, int] = {}

    def of(item: PlannedItem) -> int:
        chain = []
        node: PlannedItem | None = item
        while node is not None and node.key not in depth:
            chain.append(node)
            node = items[node.parent_key] if node.parent_key is not None else None
        base = depth[node.key] if node is not None else -1
        for n in reversed(chain):
            base += 1
            if base > MAX_DEPTH:  # statusd keeps five levels: hang deeper items under the deepest allowed one
                ancestor = items[n.parent_key] if n.parent_key else None
                while ancestor is not None and depth[ancestor.key] > MAX_DEPTH - 1:
                    ancestor = items[ancestor.parent_key] if ancestor.parent_key else None
                plan.warnings.append(
                    f"{n.origin}: {n.source_id} is nested deeper than {MAX_DEPTH + 1} levels; "
                    f"placed under {ancestor.source_id if ancestor else 'the top level'}"
                )
                n.metadata[plan.source]["source_parent"] = n.parent_key
                n.parent_key = ancestor.key if ancestor else None
                base = depth[ancestor.key] + 1 if ancestor else 0
            depth[n.key] = base
        return depth[item.key]

    for item in plan.items:
        of(item)
    return depth
