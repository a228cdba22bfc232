"""Read a legacy or free-form ``.project_status.md`` (SPEC §8) into an ``ImportPlan``.

The generated sections (``## Vendors``, ``## Deployments``, ``## Future Enhancements``,
``## Session Prompts``, and this project's own ``## Work Items``) are read with the mirror's parser,
leniently: a line it cannot read is kept verbatim right after its section, under a
``## Kept from …`` heading. Session front matter is YAML (pyyaml); a malformed block skips that
session with a warning naming the line. Everything outside those sections goes through
:mod:`freeform` (checklists and items under status headings become work items; the rest stays).
The resulting layout is what the mirror re-emits, so no line of the original is lost.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from statusd import models as m
from statusd.errors import StatusdError
from statusd.store import deployments, enhancements, imports, vendors, workitems
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import DEPLOYMENT, VENDOR
from statusd.sync.freeform import FreeItem, extract
from statusd.sync.markdown_model import (
    SECTIONS,
    Block,
    Deployment,
    Enhancement,
    MarkdownParseError,
    Owned,
    SessionPrompt,
    Text,
    Vendor,
    WorkItem,
)
from statusd.sync.markdown_parse import PARSERS, segment

_HEX = re.compile(r"^[0-9a-fA-F]+$")
HEADING = dict(SECTIONS)


@dataclass
class Source:
    vendors: list[Vendor] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    enhancements: list[Enhancement] = field(default_factory=list)
    sessions: list[tuple[SessionPrompt, dict[str, Any] | None]] = field(default_factory=list)
    work_items: list[WorkItem] = field(default_factory=list)  # this project's own ## Work Items
    items: list[FreeItem] = field(default_factory=list)  # found in free-form text
    layout: tuple[Block, ...] = ()
    warnings: list[str] = field(default_factory=list)
    kept_lines: int = 0


def _lenient(key: str, first: int, body: list[str], source: Source) -> tuple[Any, list[str]]:
    """Parse a section, setting aside each line the parser refuses (kept verbatim by the caller)."""
    body = list(body)
    kept: list[str] = []
    for _ in range(len(body) + 1):
        try:
            return PARSERS[key](first, body), kept
        except MarkdownParseError as exc:
            idx = exc.line - first
            if not 0 <= idx < len(body) or not body[idx].strip():
                break
            kept.append(body[idx])
            source.warnings.append(f"line {exc.line}: {exc.reason}; kept verbatim")
            body[idx] = ""
    return (), kept + [b for b in body if b.strip()]


def read_source(text: str) -> Source:
    """Parse ``text``; raise ``MarkdownParseError`` only for what no leniency can fix (NUL bytes)."""
    source = Source()
    seg = segment(text)
    layout: list[Block] = []
    for block in seg.layout:
        if isinstance(block, Text):
            offset = text.find(block.text)
            start = text.count("\n", 0, offset) + 1 if offset >= 0 else 0
            found, kept_text = extract(block.text, start)
            source.items += found
            if kept_text.strip():  # ends with a blank line: a generated section may follow
                layout.append(Text(kept_text.rstrip("\n") + "\n\n"))
            continue
        assert isinstance(block, Owned)
        layout.append(block)
        first, body = seg.sections[block.key]
        parsed, kept = _lenient(block.key, first, body, source)
        if block.key == "vendors":
            source.vendors += parsed
        elif block.key == "deployments":
            source.deployments += parsed
        elif block.key == "enhancements":
            source.enhancements += parsed
        elif block.key == "work_items":
            source.work_items += parsed
        elif block.key == "sessions":
            for s in parsed:
                source.sessions.append((s, _front_matter(s, source)))
        if kept:
            source.kept_lines += len(kept)
            layout.append(
                Text(f"## Kept from {HEADING[block.key]} (not understood by statusd)\n\n" + "\n".join(kept) + "\n\n")
            )
    source.sessions = [(s, fm) for s, fm in source.sessions if fm is not None or s.front_matter is None]
    source.layout = tuple(layout)
    return source


def read_prompts_dir(directory: Path, source: Source) -> None:
    """Add one session prompt per ``*.md`` file of ``directory`` (title = file name; optional front matter)."""
    if not directory.is_dir():
        raise MarkdownParseError(0, f"prompts_dir {directory} is not a directory")
    for path in sorted(directory.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            source.warnings.append(f"{path.name}: not read ({exc}); skipped")
            continue
        front: str | None = None
        lines = text.split("\n")
        if lines and lines[0].strip() == "---":
            end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
            if end is not None:
                front = "".join(x + "\n" for x in lines[1:end])
                lines = lines[end + 1 :]
        prompt = "\n".join(lines).strip("\n") or None
        session = SessionPrompt(sid=None, title=path.stem[:200], front_matter=front, prompt=prompt, line=1)
        fm = _front_matter(session, source)
        if fm is not None or front is None:
            source.sessions.append((session, fm))


def _front_matter(s: SessionPrompt, source: Source) -> dict[str, Any] | None:
    if s.front_matter is None:
        return None
    try:
        fm = yaml.safe_load(s.front_matter)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = s.line + 2 + (mark.line if mark is not None else 0)
        source.warnings.append(f"line {line}: malformed front matter in session {s.title!r} ({exc}); session skipped")
        return None
    if not isinstance(fm, dict):
        source.warnings.append(f"line {s.line + 2}: front matter of session {s.title!r} is not a mapping; skipped")
        return None
    return fm


class LegacyPlan:
    """The ``ImportPlan`` for one parsed file (see :mod:`statusd.sync.migration`)."""

    def __init__(self, source: Source, path: str) -> None:
        self.source = source
        self.path = path
        s = source
        self.total = len(s.vendors) + len(s.deployments) + len(s.enhancements) + len(s.sessions) + len(s.items)
        self.total += _count(s.work_items)
        self.abbreviated: list[str] = []
        self.created = 0
        self.session_ids: dict[str, str] = {}  # title -> id of sessions this run created from prompt blocks

    def summary(self) -> dict[str, Any]:
        s = self.source
        return {
            "path": self.path,
            "found": {
                "vendors": len(s.vendors), "deployments": len(s.deployments), "enhancements": len(s.enhancements),
                "session_prompts": len(s.sessions), "work_items": len(s.items) + _count(s.work_items),
            },
            "created": self.created,
            "kept_lines": s.kept_lines,
            "abbreviated_commit_hashes": self.abbreviated,
            "migration_warnings": list(s.warnings),  # "warnings" belongs to the result envelope
        }  # fmt: skip

    # --- apply ---------------------------------------------------------------------------------

    def apply(self, conn: sqlite3.Connection, ctx: WriteContext, step: Callable[[], None]) -> None:
        for v in self.source.vendors:
            self._vendor(conn, ctx, v)
            step()
        for d in self.source.deployments:
            self._deployment(conn, ctx, d)
            step()
        for e in self.source.enhancements:
            if _enhancement_id(conn, e) is None:
                args = m.CreateEnhancementArgs(
                    title=e.title, priority=e.priority or "medium", status=e.status or "planned",  # type: ignore[arg-type]
                    target_quarter=e.quarter,
                )  # fmt: skip
                enhancements.create(conn, ctx, args)
                self.created += 1
            step()
        for s, fm in self.source.sessions:
            if _session_id(conn, s, fm) is None:
                self._session(conn, ctx, s, fm)
            step()
        self._tree(conn, ctx, tuple(self.source.work_items), None, step)
        for item in self.source.items:
            if _item_id(conn, item.title, None) is None:
                task = m.parse_args(
                    m.CreateWorkItemArgs,
                    {"item_type": "task", "title": item.title, "status": item.status, "description": item.description},
                )
                workitems.create(conn, ctx, task)  # type: ignore[arg-type]
                self.created += 1
            step()

    def _vendor(self, conn: sqlite3.Connection, ctx: WriteContext, v: Vendor) -> None:
        metadata: dict[str, Any] = {"manifest_compliant": False}
        if v.total is not None:
            metadata["test_results"] = {"passing": v.passing or 0, "total": v.total, "skipped": v.skipped or 0}
        if v.formats is not None:
            metadata["format_support"] = {f: f in v.formats for f in m.FORMATS}
        if v.version is not None:
            metadata["extractor_version"] = v.version
        current = imports.live_vendor_by_name(conn, v.name)
        if current is None:
            vendors.create(conn, ctx, m.CreateVendorArgs(name=v.name, status=v.status, metadata=metadata))  # type: ignore[arg-type]
            self.created += 1
            return
        metadata.pop("manifest_compliant")
        merged = m.validate_vendor_metadata(m.merge_vendor_metadata(current["metadata"], metadata))
        ent.update(conn, ctx, VENDOR, current, {"status": v.status, "metadata": merged})

    def _deployment(self, conn: sqlite3.Connection, ctx: WriteContext, d: Deployment) -> None:
        if _deployment_id(conn, d) is not None:
            return
        commit = d.commit.strip().rstrip(".…").strip()
        metadata: dict[str, Any] = {
            "pr_number": d.pr_number, "pr_title": d.pr_title.strip() or f"PR #{d.pr_number}",
            "commit_hash": commit.lower(), "test_summary": dict(d.tests), "constitutional_compliance": d.compliant,
        }  # fmt: skip
        if d.work_items:
            metadata["legacy_work_items"] = list(d.work_items)
        vendor_ids = []
        for name in d.vendors:
            found = imports.live_vendor_id(conn, name)
            if found is None:
                self.source.warnings.append(
                    f"line {d.line}: deployment PR #{d.pr_number} names unknown vendor {name!r}"
                )
            else:
                vendor_ids.append(found)
        if not (7 <= len(commit) <= 40 and _HEX.match(commit)):
            # Not a hash this store accepts (e.g. the seed's "abc123..."): kept as written, flagged.
            metadata["commit_hash_unverified"] = True
            self.abbreviated.append(f"PR #{d.pr_number}: {d.commit}")
            values = {"timestamp": f"{d.date}T00:00:00.000000Z", "metadata": metadata, "vendor_ids": vendor_ids}
            deployments.index_links(conn, ent.insert(conn, ctx, DEPLOYMENT, {**values, "work_item_ids": []}))
        else:
            if len(commit) < 40:
                self.abbreviated.append(f"PR #{d.pr_number}: {commit}")
            args = m.RecordDeploymentArgs(metadata=metadata, vendor_ids=vendor_ids, timestamp=f"{d.date}T00:00:00Z")
            deployments.record(conn, ctx, args)
        self.created += 1

    def _session(
        self, conn: sqlite3.Connection, ctx: WriteContext, s: SessionPrompt, fm: dict[str, Any] | None
    ) -> None:
        metadata: dict[str, Any] = {}
        if fm is not None:
            metadata["yaml_frontmatter"] = {"schema_version": 1, **fm} if "schema_version" not in fm else fm
            budget = fm.get("token_budget")
            if isinstance(budget, int) and not isinstance(budget, bool) and 1_000 <= budget <= 1_000_000:
                metadata["token_budget"] = budget
        args = m.CreateWorkItemArgs(
            item_type="session", title=s.title[:200] or "Session", description=s.prompt, metadata=metadata
        )
        try:
            self.session_ids[s.title[:200]] = str(workitems.create(conn, ctx, args)["id"])
        except StatusdError as exc:
            self.source.warnings.append(f"line {s.line}: session {s.title!r} not imported: {exc.message}")
            return
        self.created += 1

    def _tree(
        self,
        conn: sqlite3.Connection,
        ctx: WriteContext,
        nodes: tuple[WorkItem, ...],
        parent: str | None,
        step: Callable[[], None],
    ) -> None:
        for node in nodes:
            ident = _item_id(conn, node.title, parent)
            prompt = self.session_ids.pop(node.title, None) if node.item_type == "session" else None
            if ident is None and prompt is not None:
                # This project's own format lists a session twice (tree line + prompt block): one item,
                # placed where the tree puts it.
                row = ent.get(conn, ent.WORK_ITEM, prompt)
                if row is not None:
                    move = m.UpdateWorkItemArgs.model_validate(
                        {"id": prompt, "version": row["version"], "parent_id": parent, "priority": node.priority,
                         "status": node.status},
                        strict=False,
                    )  # fmt: skip
                    workitems.update(conn, ctx, move)
                    ident = prompt
            if ident is None:
                args = m.CreateWorkItemArgs(
                    item_type=node.item_type or "task", title=node.title, priority=node.priority or "medium",  # type: ignore[arg-type]
                    status=node.status or "active", parent_id=parent,  # type: ignore[arg-type]
                )  # fmt: skip
                ident = str(workitems.create(conn, ctx, args)["id"])
                self.created += 1
            step()
            self._tree(conn, ctx, node.children, ident, step)

    # --- checks --------------------------------------------------------------------------------

    def checks(self, conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        s = self.source

        def check(source: int, migrated: int) -> dict[str, Any]:
            return {"source": source, "migrated": migrated, "match": source == migrated}

        live_vendors: dict[str, tuple[str, dict[str, Any]]] = {
            r[0].lower(): (r[1], json.loads(r[2])) for r in imports.live_vendor_summaries(conn)
        }
        deployed = sum(_deployment_id(conn, d) is not None for d in s.deployments)
        planned = sum(_enhancement_id(conn, e) is not None for e in s.enhancements)
        prompts = sum(_session_id(conn, p, fm) is not None for p, fm in s.sessions)
        items = sum(_item_id(conn, i.title, None) is not None for i in s.items)
        items += _count_present(conn, tuple(s.work_items), None)
        out = {
            "vendor_count": check(len(s.vendors), sum(v.name.lower() in live_vendors for v in s.vendors)),
            "deployment_history": check(len(s.deployments), deployed),
            "enhancements": check(len(s.enhancements), planned),
            "session_prompts": check(len(s.sessions), prompts),
            "work_items": check(len(s.items) + _count(s.work_items), items),
        }
        fields = ["operational_status", "test_results", "format_support", "version"]
        good = 0
        for v in s.vendors:
            status, md = live_vendors.get(v.name.lower(), (None, {}))
            tr = md.get("test_results") or {}
            fs = md.get("format_support") or {}
            good += status == v.status
            good += v.total is None or (tr.get("passing"), tr.get("total"), tr.get("skipped")) == (
                v.passing or 0,
                v.total,
                v.skipped or 0,
            )
            good += v.formats is None or tuple(f for f in m.FORMATS if fs.get(f)) == v.formats
            good += v.version is None or md.get("extractor_version") == v.version
        total = 4 * len(s.vendors)
        pct = 100.0 if total == 0 else round(100.0 * good / total, 2)
        out["vendor_metadata"] = {"fields_validated": fields, "completeness_percentage": pct, "match": pct == 100.0}
        return out


def _count(nodes: list[WorkItem] | tuple[WorkItem, ...]) -> int:
    return sum(1 + _count(n.children) for n in nodes)


def _count_present(conn: sqlite3.Connection, nodes: tuple[WorkItem, ...], parent: str | None) -> int:
    total = 0
    for n in nodes:
        ident = _item_id(conn, n.title, parent)
        if ident is not None:
            total += 1 + _count_present(conn, n.children, ident)
    return total


def _item_id(conn: sqlite3.Connection, title: str, parent: str | None) -> str | None:
    return imports.live_item_id(conn, title, parent)


def _deployment_id(conn: sqlite3.Connection, d: Deployment) -> str | None:
    return imports.deployment_id_for(conn, d.date, d.pr_number)


def _enhancement_id(conn: sqlite3.Connection, e: Enhancement) -> str | None:
    return imports.live_enhancement_id(conn, e.title)


def _session_id(conn: sqlite3.Connection, s: SessionPrompt, fm: dict[str, Any] | None) -> str | None:
    sid = fm.get("session_id") if fm else None
    if sid is not None:
        return imports.session_id_by_frontmatter(conn, sid)
    return imports.session_id_by_prompt(conn, s.title[:200], s.prompt)
