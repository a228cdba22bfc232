"""The data the figures run on, written into a store file before its daemon starts.

Each ``seed_*`` function is a store write function (``fn(conn, ctx, ...)``) that loops internally,
so ``Store.write_sync`` inserts a whole dataset in one transaction through the store's own write
path (rows, history records).

Datasets:

- **seed** — the seed document's fixtures: 45 vendors (2/3 operational, full metadata), 50 active
  work items in 5 project trees (project → 2 sessions → 3 tasks each, plus one research item per
  project at depth 3), 10 deployments, 8 enhancements.
- **vendors** — ``n`` vendors named ``vendor_0 … vendor_{n-1}``.
- **large** — ``n`` work items (100,000 in full mode) as ``n / 100`` identical trees of 100 items
  (1 project, 3 sessions, 9 tasks, 27 tasks/research at depth 3, 60 tasks at depth 4). 10% of the
  trees are *active* (all items ``active``: 10,000 of 100,000), 45% are *completed* but not yet
  archived (still counted by the status report), 45% are *completed and archived*. Active trees
  carry ``depends_on`` edges between neighbouring items (one in three items), and the benchmark
  leaf (tree 0's first depth-4 item) has 3 outgoing and 2 incoming edges. Timestamps are spread
  one second apart, archived trees oldest. Plus the seed's vendors, deployments and enhancements,
  so the status report has every section. Items are inserted with ``entities.insert`` (the store's
  only insert path, history included) rather than one parsed tool call per item, for seeding speed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statusd.models import (
    DEFAULT_TOKEN_BUDGET,
    CreateEnhancementArgs,
    CreateVendorArgs,
    CreateWorkItemArgs,
    RecordDeploymentArgs,
    iso,
    item_metadata_defaults,
)
from statusd.store import dependencies, deployments, enhancements, vendors, workitems
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import DEPENDENCY, WORK_ITEM

PRIORITIES = ("critical", "high", "medium", "low")
TREE_SIZE = 100
# Per depth: how many children each node of the level above gets (depth 4: 6 nodes get 3, 21 get 2).
_DEPTH4_FANOUT = [3] * 6 + [2] * 21


def vendor_metadata(i: int) -> dict[str, Any]:
    return {
        "test_results": {"passing": 10, "total": 12, "skipped": 2},
        "format_support": {"excel": True, "csv": True, "pdf": i % 2 == 0, "ocr": False},
        "extractor_version": "1.2.3",
        "manifest_compliant": True,
    }


def seed_vendors(conn: sqlite3.Connection, ctx: WriteContext, n: int) -> list[str]:
    names = []
    for i in range(n):
        status = "operational" if i % 3 != 0 else "broken"
        args = CreateVendorArgs(name=f"vendor_{i}", status=status, metadata=vendor_metadata(i))
        names.append(vendors.create(conn, ctx, args)["name"])
    return names


def _seed_events(conn: sqlite3.Connection, ctx: WriteContext, vendor_ids: list[str], item_ids: list[str]) -> None:
    for i in range(10):
        metadata = {
            "pr_number": 100 + i,
            "pr_title": f"Deployment {i}",
            "commit_hash": f"{i:x}" * 40,
            "test_summary": {"passed": 45, "failed": 0, "skipped": 2},
            "constitutional_compliance": True,
        }
        links = {"vendor_ids": vendor_ids[i : i + 3], "work_item_ids": item_ids[i : i + 2]}
        deployments.record(conn, ctx, RecordDeploymentArgs(metadata=metadata, **links))
    for i in range(8):
        args = CreateEnhancementArgs(title=f"Enhancement {i}", priority=PRIORITIES[i % 4], target_quarter="Q1 2026")
        enhancements.create(conn, ctx, args)


@dataclass
class SeedData:
    vendor_names: list[str]
    item_ids: list[str]


def seed_small(conn: sqlite3.Connection, ctx: WriteContext) -> SeedData:
    """The seed document's fixture set (45 vendors, 50 items, 10 deployments, 8 enhancements)."""
    names = seed_vendors(conn, ctx, 45)
    items: list[str] = []

    def make(item_type: str, title: str, parent: str | None, i: int) -> str:
        args = CreateWorkItemArgs(item_type=item_type, title=title, parent_id=parent, priority=PRIORITIES[i % 4])
        ident = str(workitems.create(conn, ctx, args)["id"])
        items.append(ident)
        return ident

    for p in range(5):
        project = make("project", f"Project {p}", None, p)
        for s in range(2):
            session = make("session", f"Session {p}.{s}", project, s)
            tasks = [make("task", f"Task {p}.{s}.{t}", session, t) for t in range(3)]
        make("research", f"Research {p}", tasks[0], p)
    vendor_ids = [r[0] for r in conn.execute("SELECT id FROM vendors ORDER BY name")]
    _seed_events(conn, ctx, vendor_ids, items)
    return SeedData(names, items)


@dataclass
class LargeData:
    items: int
    active_items: int
    edges: int
    leaf_id: str
    leaf_edges: int
    root_id: str
    root_descendants: int
    chain: list[str] = field(default_factory=list)


def _tree_shape() -> list[tuple[int, int | None]]:
    """(depth, parent index within the tree) for the 100 nodes of one tree, breadth first."""
    nodes: list[tuple[int, int | None]] = [(0, None)]
    level = [0]
    for depth, fanouts in ((1, [3]), (2, [3] * 3), (3, [3] * 9), (4, _DEPTH4_FANOUT)):
        nxt = []
        for parent, fanout in zip(level, fanouts, strict=True):
            for _ in range(fanout):
                nodes.append((depth, parent))
                nxt.append(len(nodes) - 1)
        level = nxt
    assert len(nodes) == TREE_SIZE
    return nodes


_TYPES = {0: "project", 1: "session", 2: "task", 3: "research", 4: "task"}


def seed_large(conn: sqlite3.Connection, ctx: WriteContext, n_items: int) -> LargeData:
    """``n_items`` work items in trees of 100 (see the module docstring for the mix)."""
    shape = _tree_shape()
    trees = n_items // TREE_SIZE
    start = datetime(2024, 1, 1, tzinfo=UTC)
    tick = 0

    def stamp() -> None:
        nonlocal tick
        ctx.now = iso(start + timedelta(seconds=tick))
        tick += 1

    budget_md = {t: item_metadata_defaults(t, DEFAULT_TOKEN_BUDGET) for t in set(_TYPES.values())}
    # Archived trees first (oldest), then completed, then active: tree index k → kind.
    n_active = max(1, trees // 10)
    n_archived = (trees - n_active) // 2
    kinds = ["archived"] * n_archived + ["completed"] * (trees - n_active - n_archived) + ["active"] * n_active
    edges = 0
    active_items = 0
    first_active: list[str] = []
    for k, kind in enumerate(kinds):
        ids: list[str] = []
        for j, (depth, parent) in enumerate(shape):
            stamp()
            item_type = _TYPES[depth] if depth != 3 or j % 2 else "task"
            values = {
                "item_type": item_type,
                "title": f"Item {k}.{j} ({kind})",
                "description": f"Benchmark item {j} of tree {k}",
                "status": "active" if kind == "active" else "completed",
                "priority": PRIORITIES[(k + j) % 4],
                "parent_id": None if parent is None else ids[parent],
                "depth": depth,
                "metadata": budget_md[item_type],
                "archived_at": ctx.now if kind == "archived" else None,
            }
            ids.append(str(ent.insert(conn, ctx, WORK_ITEM, values)["id"]))
        if kind == "active":
            active_items += len(ids)
            for j in range(2, len(ids)):
                if j % 3 == 0:
                    _edge(conn, ctx, ids[j], ids[j - 1], "depends_on")
                    edges += 1
            if not first_active:
                first_active = ids
    # The measured leaf: tree's first depth-4 node; 3 outgoing and 2 incoming edges.
    ids = first_active
    leaf = next(j for j, (depth, _) in enumerate(shape) if depth == 4)
    leaf_parent = shape[leaf][1]
    assert leaf_parent is not None
    extra = [
        (ids[leaf], ids[leaf + 1], "depends_on"),
        (ids[leaf], ids[leaf + 2], "depends_on"),
        (ids[leaf], ids[leaf - 3], "depends_on"),
        (ids[leaf + 4], ids[leaf], "depends_on"),
        (ids[leaf_parent + 1], ids[leaf], "blocks"),
    ]
    for a, b, kind in extra:
        _edge(conn, ctx, a, b, kind)
    edges += len(extra)
    leaf_edges = conn.execute(
        "SELECT COUNT(*) FROM dependencies WHERE work_item_id = ?1 OR depends_on_id = ?1", (ids[leaf],)
    ).fetchone()[0]
    chain, node = [], leaf
    while node is not None:
        chain.append(ids[node])
        node = shape[node][1]
    seed_vendors(conn, ctx, 45)
    vendor_ids = [r[0] for r in conn.execute("SELECT id FROM vendors ORDER BY name")]
    _seed_events(conn, ctx, vendor_ids, ids)
    return LargeData(
        items=trees * TREE_SIZE,
        active_items=active_items,
        edges=edges,
        leaf_id=ids[leaf],
        leaf_edges=int(leaf_edges),
        root_id=ids[0],
        root_descendants=TREE_SIZE - 1,
        chain=list(reversed(chain)),
    )


def _edge(conn: sqlite3.Connection, ctx: WriteContext, a: str, b: str, kind: str) -> None:
    values = {"work_item_id": a, "depends_on_id": b, "dependency_type": kind}
    ent.insert(conn, ctx, DEPENDENCY, values, dependencies.edge_id(a, b, kind))
