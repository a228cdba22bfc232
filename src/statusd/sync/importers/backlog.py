"""Read a Backlog.md ``backlog/`` folder (MrLesk/Backlog.md) into a :class:`Plan`.

One markdown file per task with YAML front matter (``id``, ``title``, ``status``, ``assignee``,
``labels``, ``dependencies``, ``parent_task_id``, ``priority``, …) and ``## `` body sections. The
folder says as much as the status: ``completed/`` is done, ``archive/`` was archived (imported
soft-deleted), ``drafts/`` are not yet tasks. Statuses come from ``config.yml``: matched
case- and space-insensitively, the last one (or those of category done/dropped) is terminal.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from statusd.sync.importers import frontmatter
from statusd.sync.importers.frontmatter import FrontMatterError, _TextLoader
from statusd.sync.importers.plan import Plan, PlannedEdge, as_list, make_item

DEFAULT_STATUSES = ["To Do", "In Progress", "Done"]
# (folder prefix, how it is imported), most specific first; this order also decides which of two
# files with one id is "first". Files in subfolders count (people file archived work by epic).
FOLDERS = (
    ("tasks/", "task"),
    ("drafts/", "draft"),
    ("completed/", "completed"),
    ("archive/drafts/", "archived_draft"),
    ("archive/milestones/", ""),
    ("archive/", "archived"),
)
# Backlog.md's own documents: not tasks, so not records of this import.
NOT_TASKS = ("docs/", "decisions/", "milestones/")
DRAFT_REASON = "Backlog.md draft: not yet promoted to a task"
_FILE_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_]*-\d+(?:\.\d+)*)\b")
_HANDLED = frozenset({"id", "title", "status", "priority", "dependencies", "parent_task_id"})


def locate(path: Path) -> Path:
    """The backlog directory: ``path`` itself, or ``backlog/`` / ``.backlog/`` inside a project."""
    if any((path / name).exists() for name in ("config.yml", "config.yaml", "tasks")):
        return path
    for name in ("backlog", ".backlog"):
        if (path / name).is_dir():
            return path / name
    raise FileNotFoundError(f"no Backlog.md folder at {path} (looked for config.yml, tasks/, backlog/, .backlog/)")


def _norm(status: str) -> str:
    return re.sub(r"\s+", "", status).lower()


class Statuses:
    """The project's status vocabulary and what each one means for statusd."""

    def __init__(self, raw: Any) -> None:
        entries = raw if isinstance(raw, list) and raw else DEFAULT_STATUSES
        self.names: list[str] = []
        self.category: dict[str, str] = {}
        for entry in entries:
            name = entry.get("name") if isinstance(entry, dict) else entry
            if not isinstance(name, str) or not name.strip():
                continue
            self.names.append(name)
            category = entry.get("category") if isinstance(entry, dict) else None
            self.category[_norm(name)] = str(category) if category else ""
        if not any(c in ("done", "dropped") for c in self.category.values()) and self.names:
            self.category[_norm(self.names[-1])] = "done"  # Backlog.md's rule: the last column is terminal

    def map(self, status: str) -> tuple[str, bool]:
        """(statusd status, known to config.yml)."""
        key = _norm(status)
        category = self.category.get(key)
        if category is None:
            if key in ("done", "completed", "closed"):
                return "completed", False
            return ("blocked" if key == "blocked" else "active"), False
        if category in ("done", "dropped"):
            return "completed", True
        return ("blocked" if category == "blocked" or key == "blocked" else "active"), True


def _config(root: Path) -> dict[str, Any]:
    for candidate in (root / "config.yml", root / "config.yaml", root.parent / "backlog.config.yml"):
        if candidate.is_file():
            import yaml

            try:
                data = yaml.load(candidate.read_text(encoding="utf-8-sig", errors="replace"), Loader=_TextLoader)
            except yaml.YAMLError:
                return {"_unreadable": str(candidate)}
            return data if isinstance(data, dict) else {}
    return {}


def _ascii_number(text: str) -> bool:
    """Digits and dots only, ASCII only (``'¹'.isdigit()`` is true, but ``int('¹')`` fails)."""
    digits = text.replace(".", "")
    return digits.isascii() and digits.isdigit()


def canonical(ident: str) -> str:
    """Backlog.md compares ids case-insensitively; ``task-007`` and ``task-7`` are one id."""
    parts = re.split(r"([0-9]+)", ident.strip().lower())
    return "".join(str(int(p)) if p.isascii() and p.isdigit() else p for p in parts)


def read(path: Path) -> Plan:
    root = locate(path)
    plan = Plan(source="backlog", path=str(root))
    config = _config(root)
    if "_unreadable" in config:
        plan.warnings.append(f"{config['_unreadable']}: not valid YAML; using the default statuses")
    statuses = Statuses(config.get("statuses"))
    parsed: list[tuple[Path, str, dict[str, Any], str, bool]] = []
    for rank, rel, file in sorted(_task_files(root)):
        kind = FOLDERS[rank][1] if rank < len(FOLDERS) else ""
        plan.records_read += 1
        if not kind:
            plan.skip(rel, "not in a Backlog.md task folder (tasks/, drafts/, completed/, archive/)")
            continue
        try:
            data, body = frontmatter.split(file.read_text(encoding="utf-8-sig", errors="replace"))
        except FrontMatterError as exc:
            plan.skip(f"{rel}:{exc.line}", str(exc).split(": ", 1)[1])
            continue
        if data is None and not _FILE_ID.match(file.stem):
            plan.skip(rel, "no front matter and no task id in the file name (not a task)")
            continue
        parsed.append((file, kind, data or {}, body, data is None))
    _map(plan, root, statuses, parsed)
    return plan


def _task_files(root: Path) -> list[tuple[int, str, Path]]:
    """Every markdown file under the backlog folder except Backlog.md's documents, ranked by folder."""
    out = []
    for file in root.rglob("*.md"):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(NOT_TASKS) or rel.startswith(".") or rel == "archive/milestones" or not file.is_file():
            continue
        rank = next((i for i, (prefix, _) in enumerate(FOLDERS) if rel.startswith(prefix)), len(FOLDERS))
        if rank < len(FOLDERS) and not FOLDERS[rank][1]:
            continue  # archived milestones are documents too
        out.append((rank, rel, file))
    return out


def _map(plan: Plan, root: Path, statuses: Statuses, parsed: list[tuple[Path, str, dict[str, Any], str, bool]]) -> None:
    keys: dict[str, str] = {}  # canonical id -> key of the first file with it
    numbers: Counter[str] = Counter()
    entries: list[tuple[str, str, Path, str, dict[str, Any], str, bool]] = []
    for file, kind, data, body, bare in parsed:
        rel = str(file.relative_to(root))
        ident = str(data.get("id") or "").strip()
        if not ident:
            match = _FILE_ID.match(file.stem)
            ident = match.group(1) if match else file.stem
        canon = canonical(ident)
        key = canon
        if canon in keys:
            key = f"{canon}@{rel}"
            plan.warnings.append(
                f"{rel}: duplicate id {ident} (first in {keys[canon].partition('@')[2] or canon}); kept both"
            )
        else:
            keys[canon] = canon
            numbers[canon.rpartition("-")[2]] += 1
        entries.append((key, ident, file, kind, data, body, bare))

    prefixes = {k.rpartition("-")[0] for k in keys}

    def resolve(ref: Any) -> str:
        text = canonical(str(ref))
        if text in keys:
            return text
        prefix, dash, number = text.rpartition("-")
        # A project that changed task_prefix (Backlog.md's own: task-100.1 -> BACK-100.1) keeps the old
        # references; one no task uses any more names the task with that number, as a bare number does.
        if dash and prefix not in prefixes and prefix != "draft" and _ascii_number(number):
            text = number
        if not _ascii_number(text):
            return text
        matches = [k for k in keys if k.rpartition("-")[2] == text]
        tasks = [k for k in matches if not k.startswith("draft-")]  # a bare number names a task, not a draft
        for group in (matches, tasks):
            if len(group) == 1:
                return group[0]
        return text

    first_paths = {key: str(file.relative_to(root)) for key, _, file, *_ in entries if "@" not in key}
    for key, ident, file, kind, data, body, bare in entries:
        rel = str(file.relative_to(root))
        status_text = str(data.get("status") or (statuses.names[0] if statuses.names else "To Do"))
        status, known = statuses.map(status_text)
        if not known and data.get("status") is not None:
            plan.warnings.append(f"{rel}: status {status_text!r} is not in config.yml; imported as {status}")
        namespace: dict[str, Any] = {k: v for k, v in data.items() if k not in _HANDLED}
        namespace["folder"] = rel.rpartition("/")[0]
        if bare:
            namespace["front_matter"] = "missing"
            plan.warnings.append(f"{rel}: no front matter; id and title taken from the file name")
        if "@" in key:
            namespace["duplicate_of"] = first_paths.get(key.partition("@")[0])
        preamble, found = frontmatter.sections(body)
        heading = re.match(r"^#\s+(.+)$", preamble.strip().split("\n", 1)[0]) if preamble else None
        if heading and not data.get("title"):
            preamble = preamble.strip().partition("\n")[2].strip()
        description = "\n\n".join(p for p in (preamble, found.pop("Description", "")) if p)
        if found:
            namespace["sections"] = found
        title = data.get("title") or (heading.group(1) if heading else _title_from_file(file.stem, ident))
        if kind == "completed":
            status = "completed"
        if kind in ("draft", "archived_draft"):
            namespace["draft"] = True
            if status != "completed":
                status = "blocked"
        priority = str(data.get("priority") or "medium").strip().lower()
        if priority not in ("critical", "high", "medium", "low"):
            plan.warnings.append(f"{rel}: priority {data.get('priority')!r} is not high/medium/low; imported as medium")
            priority = "medium"
        item = make_item(
            plan,
            key=key,
            source_id=ident,
            origin=rel,
            source_path=rel,
            source_status=status_text,
            title=str(title),
            namespace=namespace,
            status=status,
            priority=priority,
            deleted=kind.startswith("archived"),
            description=description,
        )
        if kind in ("draft", "archived_draft") and status == "blocked":
            item.metadata["blocked_reason"] = DRAFT_REASON
        parent = data.get("parent_task_id") or data.get("parent")
        if parent:
            item.parent_key = resolve(parent)
        plan.items.append(item)
        for dep in as_list(data.get("dependencies")):
            if str(dep).strip():
                plan.edges.append(PlannedEdge(key, resolve(dep), rel, "dependencies"))


def _title_from_file(stem: str, ident: str) -> str:
    rest = stem[len(ident) :] if stem.lower().startswith(ident.lower()) else stem
    return rest.strip(" -_").replace("-", " ") or ident
