"""Read the active state out of a store connection as a ``MirrorState`` plus the ids behind it.

``snapshot`` runs a handful of whole-table queries inside the caller's read transaction. Its
``Rendered`` record maps each short id shown in the file back to the full id and the version the
line was rendered from, so an edit to that line is applied against exactly that version.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from statusd.models import FORMATS, human_quarter
from statusd.store import mirror_snapshot
from statusd.sync.markdown_model import (
    TEST_ORDER,
    Conflict,
    Deployment,
    Enhancement,
    MirrorState,
    SessionPrompt,
    Vendor,
    WorkItem,
    short_ids,
)


@dataclass
class Rendered:
    """What a render showed: per section, short id → (full id, version)."""

    state: MirrorState
    ids: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)

    def lookup(self, section: str, sid: str | None) -> tuple[str, int] | None:
        if sid is None:
            return None
        return self.ids.get(section, {}).get(sid)


def _test_pairs(summary: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(summary, dict):
        return ()
    keys = [k for k in TEST_ORDER if k in summary] + sorted(k for k in summary if k not in TEST_ORDER)
    return tuple((k, int(summary[k])) for k in keys if isinstance(summary[k], int) and " " not in k and k)


def front_matter_text(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return yaml.safe_dump(value, sort_keys=True, allow_unicode=True, default_flow_style=False)


def snapshot(conn: sqlite3.Connection, banner: str | None = None, *, with_ids: bool = True) -> Rendered:
    """The state the file shows, read in the caller's transaction (any thread).

    ``with_ids=False``: the state alone (empty ``ids``), for a render that no save is compared with.
    """
    with gc_paused():
        return _snapshot(conn, banner, with_ids)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector out of a build that makes only acyclic objects.

    At 10,000 open items a snapshot allocates ~100,000 objects, and the collections they trigger
    walk the freshly built tree again and again: about 40% of the snapshot's time (SPEC §11 P8).
    The pause is process-wide, so it ends as it began: a collector that was off stays off.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _snapshot(conn: sqlite3.Connection, banner: str | None, with_ids: bool) -> Rendered:
    ids: dict[str, dict[str, tuple[str, int]]] = {}

    def shorts(section: str, rows: list[tuple[Any, ...]]) -> dict[str, str]:
        """Short ids of rows that start (id, version, ...)."""
        sid = short_ids([r[0] for r in rows])
        if with_ids:
            ids[section] = {sid[r[0]]: (r[0], r[1]) for r in rows}
        return sid

    vrows = mirror_snapshot.vendor_rows(conn)
    vs = shorts("vendors", vrows)
    vendors = []
    vendor_names = {}
    for ident, _v, name, status, raw in vrows:
        md = json.loads(raw)
        tr = md.get("test_results") or {}
        fs = md.get("format_support") or {}
        vendor_names[ident] = name
        vendors.append(
            Vendor(
                sid=vs[ident], name=name, status=status, passing=int(tr.get("passing", 0)),
                total=int(tr.get("total", 0)), skipped=int(tr.get("skipped", 0)),
                formats=tuple(f for f in FORMATS if fs.get(f)), version=str(md.get("extractor_version", "0.0.0")),
            )
        )  # fmt: skip

    wrows = mirror_snapshot.work_item_rows(conn)
    ws = shorts("work_items", wrows)
    if with_ids:
        ids["sessions"] = ids["work_items"]
    work_items = _tree(wrows, ws)
    session_rows = [r for r in wrows if r[3] == "session"]
    texts = mirror_snapshot.session_texts(conn, [r[0] for r in session_rows]) if session_rows else {}
    sessions = []
    for r in session_rows:
        prompt, raw = texts.get(r[0], (None, None))
        md = json.loads(raw) if raw else {}
        fm = front_matter_text(md.get("yaml_frontmatter"))
        if prompt is None and fm is None:
            continue
        sessions.append(SessionPrompt(sid=ws[r[0]], title=r[4], front_matter=fm, prompt=prompt))
    del wrows, session_rows, texts

    drows = mirror_snapshot.deployment_rows(conn)
    ds = shorts("deployments", drows)
    deployments = []
    for ident, _v, ts, raw, vids, wids in drows:
        md = json.loads(raw)
        deployments.append(
            Deployment(
                sid=ds[ident], date=ts[:10], pr_number=int(md.get("pr_number", 0)),
                pr_title=str(md.get("pr_title", "")), commit=str(md.get("commit_hash", "")),
                vendors=tuple(vendor_names.get(v) or v[:8] for v in json.loads(vids)),
                work_items=tuple(ws.get(w, w[:8]) for w in json.loads(wids)),
                tests=_test_pairs(md.get("test_summary")), compliant=bool(md.get("constitutional_compliance")),
            )
        )  # fmt: skip

    erows = mirror_snapshot.enhancement_rows(conn)
    es = shorts("enhancements", erows)
    enhancements = tuple(
        Enhancement(sid=es[r[0]], title=r[2], priority=r[3], quarter=human_quarter(r[4]), status=r[5]) for r in erows
    )

    crows = mirror_snapshot.open_conflict_rows(conn)
    cs = short_ids([r[0] for r in crows])
    conflicts = tuple(Conflict(sid=cs[r[0]], text=_conflict_text(r[1], r[2], r[3], r[4])) for r in crows)

    state = MirrorState(
        vendors=tuple(vendors), work_items=work_items, deployments=tuple(deployments), enhancements=enhancements,
        sessions=tuple(sessions), conflicts=conflicts, banner=banner,
    )  # fmt: skip
    return Rendered(state=state, ids=ids)


def _tree(rows: list[tuple[Any, ...]], sids: dict[str, str]) -> tuple[WorkItem, ...]:
    """The work item tree, rows in display order; a live item under a hidden parent shows at the top."""
    by_id = {r[0]: r for r in rows}
    children: dict[str | None, list[str]] = {}
    for r in rows:
        children.setdefault(r[2] if r[2] in by_id else None, []).append(r[0])
    return _subtree(children, by_id, sids, None, 0) if None in children else ()


def _subtree(
    children: dict[str | None, list[str]],
    by_id: dict[str, tuple[Any, ...]],
    sids: dict[str, str],
    parent: str | None,
    depth: int,
) -> tuple[WorkItem, ...]:
    # A module function, not a closure: a recursive closure is a reference cycle, and it kept every
    # row of the snapshot alive until the next full collection (SPEC §11 P9).
    # Leaves (most items) are not called into.
    out = []
    for ident in children[parent]:
        r = by_id[ident]
        kids = _subtree(children, by_id, sids, ident, depth + 1) if depth < 8 and ident in children else ()
        # What WorkItem(...) makes, without its frozen __init__'s seven object.__setattr__ calls.
        item = new(WorkItem)
        item.__dict__.update(
            sid=sids[ident], title=r[4], item_type=r[3], priority=r[6], status=r[5], children=kids, line=0
        )
        out.append(item)
    return tuple(out)


new = object.__new__


def _conflict_text(entity: str, entity_id: str, kind: str, raw: str) -> str:
    fields = json.loads(raw)
    label = "rejected operation" if kind == "rejected" else ("duplicate" if kind == "duplicate" else "conflict")
    parts = []
    for name, values in sorted(fields.items()):
        local = json.dumps(values.get("local"), ensure_ascii=False)[:60]
        remote = json.dumps(values.get("remote"), ensure_ascii=False)[:60]
        parts.append(f"{name}: yours {local}, kept {remote}")
    return f"{label} on {entity} {entity_id[:8]}: {'; '.join(parts)} (resolve with resolve_conflict)"


_TABLES = {
    "vendors": "vendors",
    "work_items": "work_items",
    "deployments": "deployments",
    "enhancements": "enhancements",
}


def sid_lists(state: MirrorState) -> dict[str, list[str]]:
    """The short ids a document's lines carry, by section."""
    return _sids(state)


def _sids(state: MirrorState) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"vendors": [v.sid for v in state.vendors if v.sid]}
    items: list[str] = []

    def walk(nodes: tuple[WorkItem, ...]) -> None:
        for n in nodes:
            if n.sid:
                items.append(n.sid)
            walk(n.children)

    walk(state.work_items)
    out["work_items"] = items + [s.sid for s in state.sessions if s.sid]
    out["deployments"] = [d.sid for d in state.deployments if d.sid]
    out["enhancements"] = [e.sid for e in state.enhancements if e.sid]
    return out


def rebase(conn: sqlite3.Connection, state: MirrorState) -> Rendered:
    """A base for a file rendered by an earlier daemon: its state, its ids, versions unknown (-1).

    With an unknown version every edit takes the merge path: a field is applied only where the store
    still holds what the file showed, so changes the store made after that file was written (and
    that never reached it, e.g. before a crash) are never reverted by an unedited line.
    """
    ids: dict[str, dict[str, tuple[str, int]]] = {}
    for section, sids in _sids(state).items():
        table = _TABLES[section]
        found: dict[str, tuple[str, int]] = {}
        for sid in sids:
            rows = mirror_snapshot.ids_with_prefix(conn, table, sid)
            if len(rows) == 1:
                found[sid] = (rows[0], -1)
        ids[section] = found
    ids["sessions"] = ids["work_items"]
    return Rendered(state=state, ids=ids)
