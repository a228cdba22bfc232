"""Read a Task Master ``tasks.json`` (eyaltoledano/claude-task-master) into a :class:`Plan`.

Two shapes: legacy ``{"tasks": [...]}`` (imported as the tag ``master``) and tagged
``{"<tag>": {"tasks": [...], "metadata": {...}}, ...}``. Each tag becomes one project item with
its tasks as children and their ``subtasks`` as grandchildren. A subtask's dependency is written
as a sibling number (``2``), a numeric string (``"2"``) or a full dotted id (``"3.2"``); Task
Master itself resolves a non-dotted one to the sibling, and so does this reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from statusd.sync.importers.plan import Plan, PlannedEdge, as_list, make_item

STATUSES = {
    "pending": "active",
    "in-progress": "active",
    "review": "active",
    "deferred": "active",
    "blocked": "blocked",
    "done": "completed",
    "completed": "completed",
    "cancelled": "completed",
}
PRIORITIES = ("critical", "high", "medium", "low")
CANDIDATES = (".taskmaster/tasks/tasks.json", "tasks/tasks.json", "tasks.json")
_HANDLED = frozenset({"id", "title", "description", "status", "priority", "dependencies", "subtasks"})


def locate(path: Path) -> Path:
    if path.is_file():
        return path
    for name in CANDIDATES:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"no Task Master tasks.json under {path} (looked for {', '.join(CANDIDATES)})")


def read(path: Path) -> Plan:
    file = locate(path)
    plan = Plan(source="taskmaster", path=str(file))
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        plan.records_read += 1  # the unreadable file is the one record, so the counts still add up
        plan.skip(f"{file.name}:{getattr(exc, 'lineno', 1)}", f"not valid JSON ({exc})")
        return plan
    if not isinstance(data, dict):
        plan.records_read += 1
        plan.skip(file.name, "top level is not a JSON object")
        return plan
    if isinstance(data.get("tasks"), list):
        _tag(plan, file, "master", data["tasks"], data.get("meta") or data.get("metadata") or {}, legacy=True)
        return plan
    for tag, body in data.items():
        if isinstance(body, dict) and isinstance(body.get("tasks"), list):
            _tag(plan, file, str(tag), body["tasks"], body.get("metadata") or {}, legacy=False)
        else:
            plan.records_read += 1  # read and skipped: created + updated + unchanged + skipped = records
            plan.skip(f"{file.name}: {tag}", "not a tag ({tasks: [...]}); ignored")
    return plan


def _status(plan: Plan, origin: str, raw: Any) -> tuple[str, str]:
    text = str(raw or "pending").strip()
    mapped = STATUSES.get(text.lower())
    if mapped is None:
        plan.warnings.append(f"{origin}: status {text!r} is unknown to Task Master; imported as active")
        mapped = "active"
    return text, mapped


def _priority(raw: Any, fallback: str) -> str:
    text = str(raw or "").strip().lower()
    return text if text in PRIORITIES else fallback


def _tag(plan: Plan, file: Path, tag: str, tasks: list[Any], meta: Any, *, legacy: bool) -> None:
    root_key = tag
    plan.records_read += 1  # the tag itself becomes an item (its project), so it is a record too
    plan.items.append(
        make_item(
            plan,
            key=root_key,
            source_id=tag,
            origin=f"{file.name}: tag {tag}",
            source_path=str(file),
            source_status=None,
            title=f"Task Master: {tag}",
            namespace={"tag": tag, "tag_metadata": meta if isinstance(meta, dict) else None, "legacy_format": legacy},
            item_type="project",
            description=(meta.get("description") if isinstance(meta, dict) else None) or None,
        )
    )
    top_ids = {str(t.get("id")) for t in tasks if isinstance(t, dict)}
    taken: dict[str, str] = {root_key: f"{file.name}: tag {tag}"}

    def unique(key: str, origin: str, ident: str) -> str:
        """A repeated id (hand-merged files have them) gets ``#2``, ``#3``… here, where its own
        dependencies and subtasks are still known, so they stay with it rather than the first one."""
        if key in taken:
            n = 2
            while f"{key}#{n}" in taken:
                n += 1
            plan.warnings.append(f"{origin}: id {ident} repeats {taken[key]}; kept both")
            key = f"{key}#{n}"
        taken[key] = origin
        return key

    for index, task in enumerate(tasks):
        origin = f"{file.name}: {tag} tasks[{index}]"
        plan.records_read += 1
        if not isinstance(task, dict) or task.get("id") is None:
            plan.skip(origin, "task is not an object with an id")
            continue
        tid = str(task["id"])
        key = unique(f"{tag}/{tid}", origin, tid)
        raw_status, status = _status(plan, origin, task.get("status"))
        priority = _priority(task.get("priority"), "medium")
        plan.items.append(_item(plan, file, key, tid, origin, task, raw_status, status, priority, root_key, tag))
        for dep in as_list(task.get("dependencies")):
            plan.edges.append(PlannedEdge(key, f"{tag}/{dep}", origin, "dependencies"))
        subs = [
            (i, sub, f"{tid}.{_local_id(tid, sub['id'])}")
            for i, sub in enumerate(as_list(task.get("subtasks")))
            if isinstance(sub, dict) and sub.get("id") is not None
        ]
        sub_keys = {i: unique(f"{tag}/{sid}", f"{origin}.subtasks[{i}]", sid) for i, _, sid in subs}
        siblings: dict[str, str] = {}  # this task's own subtasks, by the id a sibling reference uses
        for i, sub, _ in subs:
            siblings.setdefault(_local_id(tid, sub["id"]), sub_keys[i])
        for sub_index, sub in enumerate(as_list(task.get("subtasks"))):
            sub_origin = f"{origin}.subtasks[{sub_index}]"
            plan.records_read += 1
            if not isinstance(sub, dict) or sub.get("id") is None:
                plan.skip(sub_origin, "subtask is not an object with an id")
        for sub_index, sub, sid in subs:
            sub_origin = f"{origin}.subtasks[{sub_index}]"
            sub_key = sub_keys[sub_index]
            raw_sub, sub_status = _status(plan, sub_origin, sub.get("status"))
            sub_priority = _priority(sub.get("priority"), priority)  # Task Master falls back to the parent's
            plan.items.append(
                _item(plan, file, sub_key, sid, sub_origin, sub, raw_sub, sub_status, sub_priority, key, tag)
            )
            for dep in as_list(sub.get("dependencies")):
                plan.edges.append(
                    PlannedEdge(sub_key, _subtask_dep(tag, tid, dep, siblings, top_ids), sub_origin, "dependencies")
                )


def _local_id(parent: str, raw: Any) -> str:
    """A subtask's own id. Hand-edited files sometimes write the full dotted id (``"7.1"``, or the
    number ``29.1``) where Task Master writes ``1``; that is the subtask ``7.1``, not ``7.7.1``."""
    text = str(raw).strip()
    return text[len(parent) + 1 :] if text.startswith(f"{parent}.") and len(text) > len(parent) + 1 else text


def _subtask_dep(tag: str, parent: str, dep: Any, siblings: dict[str, str], top_ids: set[str]) -> str:
    """Task Master's rule: dotted is absolute, anything else is a sibling; a missing sibling that
    names a top-level task is taken as that task (older files wrote them that way)."""
    text = str(dep).strip()
    if "." in text:
        return f"{tag}/{text}"
    if text in siblings:
        return siblings[text]
    if text not in top_ids:
        return f"{tag}/{parent}.{text}"
    return f"{tag}/{text}"


def _item(
    plan: Plan,
    file: Path,
    key: str,
    ident: str,
    origin: str,
    rec: dict[str, Any],
    raw_status: str,
    status: str,
    priority: str,
    parent_key: str,
    tag: str,
) -> Any:
    namespace = {k: v for k, v in rec.items() if k not in _HANDLED}
    namespace["tag"] = tag
    namespace["dependencies"] = rec.get("dependencies") or None  # as written, for the record
    item = make_item(
        plan,
        key=key,
        source_id=ident,
        origin=origin,
        source_path=str(file),
        source_status=raw_status,
        # ``name`` is what other generators of a tasks.json at Task Master's path call the title.
        title=str(rec.get("title") or rec.get("name") or ""),
        namespace=namespace,
        status=status,
        priority=priority,
        description=str(rec.get("description") or "") or None,
    )
    item.parent_key = parent_key
    return item
