"""Read a beads ``issues.jsonl`` (steveyegge/beads) into a :class:`Plan`.

One JSON object per line, shaped like beads' ``types.Issue``: ``id``, ``title``, ``description``,
``status``, ``priority`` (0-4), ``issue_type``, ``dependencies`` [{issue_id, depends_on_id, type}],
``labels``, ``comments`` and many optional fields. Newer exports tag records with ``_type``
(``issue``; ``memory`` records are not work). Child ids are dotted (``bd-a3f8.1``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from statusd.sync.importers.plan import Plan, PlannedEdge, as_list, make_item

PRIORITIES = {0: "critical", 1: "high", 2: "medium", 3: "low", 4: "low"}
STATUSES = {"blocked": "blocked", "closed": "completed", "done": "completed"}
# Edge types that become statusd dependencies, kept in beads' direction: issue_id waits for depends_on_id.
# ``conditional-blocks`` and ``waits-for`` are direct blockers in beads too (``IsDirectBlocker``: ``bd ready``
# leaves the waiter out while the other is open), so they wait here as well.
WAIT_EDGES = frozenset({"blocks", "depends-on", "subtask-of", "conditional-blocks", "waits-for"})
PARENT_EDGE = "parent-child"
# Records beads keeps out of ``bd ready`` whatever their status (types.Issue: "not a work item",
# "read-only template molecule", wisps): imported blocked with the reason, like Backlog.md drafts.
NOT_WORK = (
    ("is_template", "beads template molecule: read-only, not work"),
    ("pinned", "beads pinned context marker: not a work item"),
    ("ephemeral", "beads ephemeral wisp: not durable work"),
)
_HANDLED = frozenset({"id", "title", "description", "status", "priority", "dependencies", "_type"})
CANDIDATES = (
    ".beads/issues.jsonl",
    "issues.jsonl",
    ".beads/beads.jsonl",
    "beads.jsonl",
    ".beads/backup/issues.jsonl",  # beads on Dolt (2026) keeps only this backup, one file per table
    "backup/issues.jsonl",
)
# The backup's other tables, read next to its issues.jsonl: {issue_id, ...} lines merged into the issue.
SIDE_TABLES = (("dependencies.jsonl", "dependencies"), ("labels.jsonl", "labels"), ("comments.jsonl", "comments"))


def locate(path: Path) -> Path:
    """The JSONL file for ``path``: the file itself, or the usual place inside a project or ``.beads``."""
    if path.is_file():
        return path
    for name in CANDIDATES:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"no beads issues.jsonl under {path} (looked for {', '.join(CANDIDATES)})")


def map_priority(value: Any) -> tuple[str, bool]:
    """statusd priority and whether the value was understood.

    A missing priority is P0, as beads itself reads it (Go's zero value): beads wrote ``priority``
    with ``omitempty`` for a while, so every P0 record of those files has none (steveyegge/beads'
    own issues.jsonl of December 2025; gastownhall/beads#671). ``null`` is read the same way.
    """
    if value is None:
        return "critical", True
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("P")
        value = int(text) if text.isascii() and text.isdigit() else value
    if isinstance(value, int) and not isinstance(value, bool) and value in PRIORITIES:
        return PRIORITIES[value], True
    return "medium", False


def map_status(value: str) -> str:
    """open / in_progress / hooked / deferred / pinned / anything unknown stay active."""
    return STATUSES.get(value, "active")


def read(path: Path) -> Plan:
    file = locate(path)
    plan = Plan(source="beads", path=str(file))
    records: dict[str, tuple[int, dict[str, Any]]] = {}
    # split("\n"), not splitlines(): JSON strings may hold U+0085 or U+2028 raw, and they are not line breaks.
    for number, raw in enumerate(file.read_text(encoding="utf-8-sig", errors="replace").split("\n"), start=1):
        origin = f"{file.name}:{number}"
        if not raw.strip():
            continue
        plan.records_read += 1
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            plan.skip(origin, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            plan.skip(origin, "JSON nested too deeply to read")
            continue
        if not isinstance(rec, dict):
            plan.skip(origin, "not a JSON object")
            continue
        kind = rec.get("_type", "issue")
        if kind != "issue":
            plan.skip(origin, f"not an issue record (_type={kind})", _text(rec.get("id") or rec.get("key")))
            continue
        ident = _text(rec.get("id")).strip()
        if not ident:
            plan.skip(origin, "record has no id")
            continue
        if rec.get("status") == "tombstone":
            plan.skip(origin, "tombstone (deleted in beads)", ident)
            plan.gone.append((ident, origin))
            continue
        if ident in records:
            earlier = records[ident][0]
            plan.skip(f"{file.name}:{earlier}", f"superseded by a later record for {ident} at line {number}", ident)
        records[ident] = (number, rec)
    _side_tables(plan, file, records)
    _map(plan, file, records)
    return plan


def _side_tables(plan: Plan, file: Path, records: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """beads' Dolt backup writes dependencies, labels and comments as their own JSONL tables beside
    issues.jsonl; without them every edge and parent of such a file would be lost without a word."""
    for name, field in SIDE_TABLES:
        side = file.with_name(name)
        if not side.is_file() or side == file:
            continue
        for number, raw in enumerate(side.read_text(encoding="utf-8-sig", errors="replace").split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                plan.warnings.append(f"{side.name}:{number}: not valid JSON; ignored")
                continue
            owner = _text(row.get("issue_id")) if isinstance(row, dict) else ""
            if owner not in records:
                plan.warnings.append(f"{side.name}:{number}: {field} row of {owner or '?'} has no issue; ignored")
                continue
            rec = records[owner][1]
            value = row.get("label") if field == "labels" else row
            rec[field] = [*as_list(rec.get(field)), value]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _map(plan: Plan, file: Path, records: dict[str, tuple[int, dict[str, Any]]]) -> None:
    parents: dict[str, str] = {}
    for ident, (number, rec) in records.items():
        origin = f"{file.name}:{number}"
        status_text = _text(rec.get("status")) or "open"
        priority, understood = map_priority(rec.get("priority"))
        if not understood:
            plan.warnings.append(f"{origin}: {ident} priority {rec.get('priority')!r} is not 0-4; imported as medium")
        namespace = {k: v for k, v in rec.items() if k not in _HANDLED}
        namespace["priority"] = rec.get("priority")  # the exact 0-4 value, so an export gives 4 back as 4
        other_edges: list[dict[str, Any]] = []
        for dep in as_list(rec.get("dependencies")):
            if not isinstance(dep, dict):
                plan.warnings.append(f"{origin}: {ident} has a dependency that is not an object; ignored")
                continue
            waiter = _text(dep.get("issue_id")) or ident
            target = _text(dep.get("depends_on_id"))
            # beads writes ``type``; beads-compatible tools (rivets, beads_rust readers) also accept ``dep_type``.
            kind = _text(dep.get("type")) or _text(dep.get("dep_type")) or "blocks"  # beads' default edge type
            if not target:
                plan.warnings.append(f"{origin}: {ident} has a {kind} edge without depends_on_id; ignored")
            elif kind == PARENT_EDGE:
                parents[waiter] = target
            elif kind in WAIT_EDGES:
                plan.edges.append(PlannedEdge(waiter, target, origin, kind))
            else:
                other_edges.append({"type": kind, "issue_id": waiter, "depends_on_id": target})
        if other_edges:
            namespace["other_edges"] = other_edges
        status = map_status(status_text)
        # ``true``, or ``1`` as the Dolt backup writes every flag.
        not_work = next((reason for flag, reason in NOT_WORK if rec.get(flag) in (True, 1)), None)
        if not_work is not None and status != "completed":
            status = "blocked"
        item = make_item(
            plan,
            key=ident,
            source_id=ident,
            origin=origin,
            source_path=str(file),
            source_status=status_text,
            title=_text(rec.get("title")),
            namespace=namespace,
            item_type="project" if rec.get("issue_type") == "epic" else "task",
            status=status,
            priority=priority,
            description=_text(rec.get("description")),
        )
        if status == "blocked" and not_work is not None:
            item.metadata["blocked_reason"] = not_work
        plan.items.append(item)
    for item in plan.items:
        parent = parents.get(item.key) or _dotted_parent(item.key, records)
        if parent is not None:
            item.parent_key = parent


def _dotted_parent(ident: str, records: dict[str, Any]) -> str | None:
    """``bd-a3f8.1.2`` is a child of ``bd-a3f8.1`` when that record is in the file."""
    head, dot, tail = ident.rpartition(".")
    if dot and tail.isdigit() and head in records:
        return head
    return None
