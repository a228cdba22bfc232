"""Apply a human's save of the mirror as ordinary writes (SPEC §9), in one store transaction.

The save is compared with what was last rendered, not with the store: a line added creates, a
line changed updates only the fields the human changed, a line removed soft-deletes. Each change
is made against the version its line was rendered from. When the store moved on meanwhile, fields
nobody else touched are applied, and a field both sides changed differently becomes a conflict
record (the store keeps its value, the human's is kept in the conflict, ``resolve_conflict``
settles it), exactly like an offline write meeting a newer remote version (§5.4).

A change the store refuses (a title too long, a move past depth 4, a duplicate vendor name) raises
``MarkdownParseError`` naming the line; the caller's transaction is rolled back, nothing applies.
Deployments and the conflicts list are read-only in the file: edits to them are reported and ignored.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from statusd import models as m
from statusd.errors import StatusdError
from statusd.models import normalize_quarter
from statusd.store import enhancements, imports, vendors, workitems
from statusd.store import entities as ent
from statusd.store.db import WriteContext
from statusd.store.entities import ENHANCEMENT, VENDOR, WORK_ITEM, Entity
from statusd.sync.markdown_model import Document, MarkdownParseError, WorkItem
from statusd.sync.mirror_state import Rendered, snapshot


@dataclass
class ImportResult:
    created_count: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0
    warnings: list[str] = field(default_factory=list)
    # Lines without an id that this import created, by (section, title or name, parent id): a second
    # save made before the mirror wrote their ids back names the same entities, not new ones.
    created: dict[tuple[str, str, str | None], list[str]] = field(default_factory=dict)
    base: Rendered | None = None  # the state after this import: what the next save is compared with

    @property
    def changed(self) -> int:
        return self.created_count + self.updated + self.deleted + self.conflicts


def apply_document(
    conn: sqlite3.Connection,
    ctx: WriteContext,
    base: Rendered,
    doc: Document,
    pending: dict[tuple[str, str, str | None], list[str]] | None = None,
) -> ImportResult:
    """Write the differences between ``base`` (last render) and ``doc`` (the human's save).

    ``pending`` is what earlier imports created from lines that still carry no id in the file.
    """
    importer = _Importer(conn, ctx, base, doc, pending or {})
    if "vendors" in doc.present:
        importer.vendors()
    if "work_items" in doc.present:
        importer.work_items()
    if "enhancements" in doc.present:
        importer.enhancements()
    if "sessions" in doc.present:
        importer.sessions()
    if "deployments" in doc.present and doc.state.deployments != base.state.deployments:
        importer.result.warnings.append("deployments are immutable records; edits to that section were ignored")
    importer.result.base = snapshot(conn, base.state.banner)
    return importer.result


def _quarter(shown: str | None) -> str | None:
    return normalize_quarter(shown, "target_quarter") if shown else None


class _Importer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        ctx: WriteContext,
        base: Rendered,
        doc: Document,
        pending: dict[tuple[str, str, str | None], list[str]],
    ) -> None:
        self.conn, self.ctx, self.base, self.doc = conn, ctx, base, doc
        self.result = ImportResult()
        self.pending = {k: list(v) for k, v in pending.items()}
        self.sid_of = {sec: {ident: sid for sid, (ident, _) in ids.items()} for sec, ids in base.ids.items()}

    def _known(self, section: str, sid: str | None, key: str, parent_id: str | None = None) -> str | None:
        """The short id a line names: its own, or that of the entity an earlier import made of it."""
        if sid is not None and self.base.lookup(section, sid) is not None:
            return sid
        for ident in self.pending.get((section, key, parent_id), []):
            known = self.sid_of.get(section, {}).get(ident)
            if known is not None:
                self.pending[(section, key, parent_id)].remove(ident)
                return known
        return sid

    def _remember(self, section: str, key: str, parent_id: str | None, ident: str) -> None:
        self.result.created.setdefault((section, key, parent_id), []).append(ident)

    # --- the version rule ------------------------------------------------------------------

    def _change(
        self, entity: Entity, ident: str, version: int, base: dict[str, Any], new: dict[str, Any], line: int, apply: Any
    ) -> None:
        """Apply ``new`` (fields the human changed from ``base``) against ``version``, merging if needed."""
        current = ent.get(self.conn, entity, ident)
        if current is None:
            return
        if current["version"] != version:
            keep, disputed = {}, {}
            for name, value in new.items():
                theirs = current.get(name)
                if theirs == base.get(name):
                    keep[name] = value
                elif theirs != value:
                    disputed[name] = {"base": base.get(name), "local": value, "remote": theirs}
            if disputed:
                self._conflict(entity, ident, version, current["version"], disputed)
            new, version = keep, current["version"]
        if not new:
            return
        try:
            apply(ident, version, new)
        except StatusdError as exc:
            raise MarkdownParseError(line, exc.message) from None
        self.result.updated += 1

    def _conflict(
        self, entity: Entity, ident: str, base_version: int, remote_version: int, fields: dict[str, Any]
    ) -> None:
        op = {
            "via": "markdown", "entity": entity.name, "entity_id": ident, "base_version": base_version,
            "changes": {k: {"old": v["base"], "new": v["local"]} for k, v in fields.items()}, "actor": self.ctx.actor,
        }  # fmt: skip
        imports.record_field_conflict(self.conn, self.ctx, entity.name, ident, fields, op, remote_version)
        self.ctx.changed_entities.add("conflict")
        self.result.conflicts += 1

    def _create(self, line: int, fn: Any, *args: Any) -> dict[str, Any]:
        try:
            row: dict[str, Any] = fn(self.conn, self.ctx, *args)
        except StatusdError as exc:
            raise MarkdownParseError(line, exc.message) from None
        self.result.created_count += 1
        return row

    def _delete(self, entity: Entity, section: str, sid: str) -> None:
        found = self.base.lookup(section, sid)
        if found is None:
            return
        ident, version = found

        def soft_delete(ident: str, version: int, new: dict[str, Any]) -> None:
            current = ent.get(self.conn, entity, ident)
            assert current is not None
            ent.update(self.conn, self.ctx, entity, current, new)

        self._change(entity, ident, version, {"deleted_at": None}, {"deleted_at": self.ctx.now}, 0, soft_delete)
        self.result.deleted += 1
        self.result.updated -= 1  # _change counted it as an update

    # --- sections --------------------------------------------------------------------------

    def work_items(self) -> None:
        old: dict[str, tuple[WorkItem, str | None]] = {}

        def index(nodes: tuple[WorkItem, ...], parent: str | None) -> None:
            for n in nodes:
                if n.sid is not None:
                    old[n.sid] = (n, parent)
                index(n.children, n.sid)

        index(self.base.state.work_items, None)
        seen: set[str] = set()

        def walk(nodes: tuple[WorkItem, ...], parent_id: str | None) -> None:
            for node in nodes:
                sid = self._known("work_items", node.sid, node.title, parent_id)
                found = self.base.lookup("work_items", sid)
                if found is not None and sid in old and sid not in seen:
                    assert sid is not None
                    node = replace(node, sid=sid)
                    seen.add(sid)
                    ident, version = found
                    before, before_parent = old[sid]
                    base_parent = self.base.lookup("work_items", before_parent)
                    base = {
                        "title": before.title, "priority": before.priority, "status": before.status,
                        "parent_id": base_parent[0] if base_parent else None,
                    }  # fmt: skip
                    new = {
                        "title": node.title,
                        "priority": node.priority,
                        "status": node.status,
                        "parent_id": parent_id,
                    }
                    changed = {k: v for k, v in new.items() if v is not None or k == "parent_id"}
                    changed = {k: v for k, v in changed.items() if v != base[k]}
                    if node.item_type is not None and node.item_type != before.item_type:
                        self.result.warnings.append(f"line {node.line}: the item type of a work item cannot change")
                    self._change(WORK_ITEM, ident, version, base, changed, node.line, self._update_item)
                else:
                    args = m.CreateWorkItemArgs(
                        item_type=node.item_type or "task", title=node.title, priority=node.priority or "medium",  # type: ignore[arg-type]
                        status=node.status or "active", parent_id=parent_id,  # type: ignore[arg-type]
                    )  # fmt: skip
                    ident = self._create(node.line, workitems.create, args)["id"]
                    self._remember("work_items", node.title, parent_id, ident)
                walk(node.children, ident)

        walk(self.doc.state.work_items, None)
        for sid in old:
            if sid not in seen:
                self._delete(WORK_ITEM, "work_items", sid)

    def _update_item(self, ident: str, version: int, new: dict[str, Any]) -> None:
        args = m.UpdateWorkItemArgs.model_validate({"id": ident, "version": version, **new}, strict=False)
        workitems.update(self.conn, self.ctx, args)

    def vendors(self) -> None:
        old = {v.sid: v for v in self.base.state.vendors if v.sid}
        seen: set[str] = set()
        for v in self.doc.state.vendors:
            v = replace(v, sid=self._known("vendors", v.sid, v.name.lower()))
            found = self.base.lookup("vendors", v.sid)
            metadata: dict[str, Any] = {}
            if v.total is not None:
                metadata["test_results"] = {"passing": v.passing or 0, "total": v.total, "skipped": v.skipped or 0}
            if v.formats is not None:
                metadata["format_support"] = {f: f in v.formats for f in m.FORMATS}
            if v.version is not None:
                metadata["extractor_version"] = v.version
            if found is None or v.sid not in old or v.sid in seen:
                args = m.CreateVendorArgs(name=v.name, status=v.status, metadata=metadata)  # type: ignore[arg-type]
                self._remember("vendors", v.name.lower(), None, self._create(v.line, vendors.create, args)["id"])
                continue
            assert v.sid is not None
            seen.add(v.sid)
            ident, version = found
            current = ent.get(self.conn, VENDOR, ident)
            if current is None:
                continue
            before = old[v.sid]
            base_md = dict(current["metadata"])
            merged = m.merge_vendor_metadata(base_md, metadata)
            try:
                merged = m.validate_vendor_metadata(merged)
                name = m.check_vendor_name(v.name)
            except StatusdError as exc:
                raise MarkdownParseError(v.line, exc.message) from None
            was: dict[str, Any] = {"name": before.name, "status": before.status}
            new: dict[str, Any] = {k: val for k, val in {"name": name, "status": v.status}.items() if val != was[k]}
            md_changed = (
                (
                    v.total is not None
                    and (v.passing, v.total, v.skipped) != (before.passing, before.total, before.skipped)
                )
                or (v.formats is not None and v.formats != before.formats)
                or (v.version is not None and v.version != before.version)
            )
            if md_changed:
                new["metadata"] = merged
                was["metadata"] = current["metadata"] if current["version"] == version else None
            self._change(VENDOR, ident, version, was, new, v.line, self._update_vendor)
        for sid in old:
            if sid not in seen:
                self._delete(VENDOR, "vendors", sid)

    def _update_vendor(self, ident: str, version: int, new: dict[str, Any]) -> None:
        current = ent.get(self.conn, VENDOR, ident)
        assert current is not None
        if "name" in new and imports.vendor_name_taken(self.conn, new["name"], ident):
            raise StatusdError(f"a vendor named {new['name']!r} already exists")
        ent.update(self.conn, self.ctx, VENDOR, current, new)

    def enhancements(self) -> None:
        old = {e.sid: e for e in self.base.state.enhancements if e.sid}
        seen: set[str] = set()
        for e in self.doc.state.enhancements:
            e = replace(e, sid=self._known("enhancements", e.sid, e.title))
            found = self.base.lookup("enhancements", e.sid)
            if found is None or e.sid not in old or e.sid in seen:
                args = m.CreateEnhancementArgs(
                    title=e.title, priority=e.priority or "medium", status=e.status or "planned",  # type: ignore[arg-type]
                    target_quarter=e.quarter,
                )  # fmt: skip
                self._remember("enhancements", e.title, None, self._create(e.line, enhancements.create, args)["id"])
                continue
            assert e.sid is not None
            seen.add(e.sid)
            ident, version = found
            before = old[e.sid]
            base = {"title": before.title, "priority": before.priority, "status": before.status,
                    "target_quarter": _quarter(before.quarter)}  # fmt: skip
            new: dict[str, Any] = {"title": e.title}
            if e.priority is not None:
                new.update(priority=e.priority, status=e.status, target_quarter=_quarter(e.quarter))
            new = {k: v for k, v in new.items() if v != base[k]}

            def apply(ident: str, version: int, values: dict[str, Any]) -> None:
                args = m.UpdateEnhancementArgs.model_validate({"id": ident, "version": version, **values}, strict=False)
                enhancements.update(self.conn, self.ctx, args)

            self._change(ENHANCEMENT, ident, version, base, new, e.line, apply)
        for sid in old:
            if sid not in seen:
                self._delete(ENHANCEMENT, "enhancements", sid)

    def sessions(self) -> None:
        old = {s.sid: s for s in self.base.state.sessions if s.sid}
        for s in self.doc.state.sessions:
            found = self.base.lookup("sessions", s.sid)
            before = old.get(s.sid) if s.sid else None
            if found is None or before is None:
                self.result.warnings.append(f"line {s.line}: add sessions as work items; this prompt block was ignored")
                continue
            ident, version = found
            new: dict[str, Any] = {}
            base: dict[str, Any] = {}
            if s.prompt != before.prompt:
                new["description"], base["description"] = s.prompt, before.prompt
            if s.front_matter != before.front_matter:
                try:
                    fm = yaml.safe_load(s.front_matter or "") or {}
                except yaml.YAMLError as exc:
                    raise MarkdownParseError(s.line, f"front matter is not valid YAML: {exc}") from None
                current = ent.get(self.conn, WORK_ITEM, ident)
                if current is not None:
                    new["metadata"] = {**current["metadata"], "yaml_frontmatter": fm}
                    base["metadata"] = current["metadata"] if current["version"] == version else None
            self._change(WORK_ITEM, ident, version, base, new, s.line, self._update_item)
