"""Write the store's live work items as beads JSONL (the shape ``bd import`` reads).

Items imported from beads keep their beads id, type, priority bucket, status word and the fields
kept in ``metadata.beads``; others get ``sd-<8 hex>`` ids. Hierarchy is a ``parent-child``
dependency (child -> parent); every "waits for" edge is a ``blocks`` dependency on the waiter.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from statusd.store import imports
from statusd.sync.importers import beads

PRIORITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}
STATUS = {"active": "open", "blocked": "blocked", "completed": "closed"}
# beads' built-in statuses; a custom one (``future``) is only valid where beads is configured for it.
BUILTIN = frozenset({"open", "in_progress", "blocked", "deferred", "closed", "pinned", "hooked"})
_OWN = frozenset({"other_edges", "full_title", "description_rest", "truncated_fields", "source_parent", "dependencies"})


def _beads_id(item: dict[str, Any], taken: set[str]) -> str:
    meta = item["metadata"] or {}
    if meta.get("source") == "beads" and isinstance(meta.get("source_id"), str) and meta["source_id"] not in taken:
        return str(meta["source_id"])
    n = 8
    while f"sd-{item['id'][:n]}" in taken:
        n += 1
    return f"sd-{item['id'][:n]}"


def beads_ids(conn: sqlite3.Connection, rows: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """statusd id -> the beads id the export gives it."""
    taken: set[str] = set()
    names: dict[str, str] = {}
    for row in imports.live_items(conn) if rows is None else rows:
        names[row["id"]] = _beads_id(row, taken)
        taken.add(names[row["id"]])
    return names


def records(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = imports.live_items(conn)
    names = beads_ids(conn, rows)
    deps: dict[str, list[dict[str, Any]]] = {}
    for a, b, kind, at, by in imports.live_edges_with_origin(conn):
        waiter, prereq = (a, b) if kind == "depends_on" else (b, a)
        if waiter in names and prereq in names:
            edge = {"issue_id": names[waiter], "depends_on_id": names[prereq], "type": "blocks", "created_at": at}
            deps.setdefault(waiter, []).append({**edge, "created_by": by})
    out = []
    for row in rows:
        out.append(_record(row, names, deps.get(row["id"], [])))
    out.sort(key=lambda r: r["id"])  # bd export sorts by id for readable diffs
    return out


def _record(row: dict[str, Any], names: dict[str, str], deps: list[dict[str, Any]]) -> dict[str, Any]:
    meta = row["metadata"] or {}
    kept: dict[str, Any] = dict(meta.get("beads") or {}) if meta.get("source") == "beads" else {}
    ident = names[row["id"]]
    status = STATUS[row["status"]]
    original = meta.get("source_status") if meta.get("source") == "beads" else None
    if isinstance(original, str) and original in BUILTIN and beads.map_status(original) == row["status"]:
        status = original
    priority = PRIORITY[row["priority"]]
    if meta.get("source") == "beads" and kept.get("priority") is not None:
        mapped, ok = beads.map_priority(kept.get("priority"))
        if ok and mapped == row["priority"]:
            priority = kept["priority"]
    issue_type = "epic" if row["item_type"] == "project" else "task"
    if isinstance(kept.get("issue_type"), str) and (kept["issue_type"] == "epic") == (row["item_type"] == "project"):
        issue_type = kept["issue_type"]
    description = (row["description"] or "") + str(kept.get("description_rest") or "")
    rec: dict[str, Any] = {k: v for k, v in kept.items() if k not in _OWN and k not in ("priority", "issue_type")}
    rec.update(
        id=ident,
        title=str(kept.get("full_title") or row["title"]),
        status=status,
        priority=priority,
        issue_type=issue_type,
        created_at=rec.get("created_at") or row["created_at"],
        updated_at=row["updated_at"],
    )
    if description:
        rec["description"] = description
    if status == "closed":
        rec["closed_at"] = rec.get("closed_at") or row["updated_at"]
    else:
        rec.pop("closed_at", None)
    edges = list(deps)
    if row["parent_id"] is not None and row["parent_id"] in names:
        edges.append(
            {
                "issue_id": ident,
                "depends_on_id": names[row["parent_id"]],
                "type": "parent-child",
                "created_at": row["created_at"],
            }
        )
    for other in kept.get("other_edges") or []:
        if isinstance(other, dict) and other.get("depends_on_id") in names.values():
            edges.append(other)
    if edges:
        rec["dependencies"] = edges
    return rec


def dumps(records_: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records_)
