"""Neutral planned records every source reader produces, and the limits they are fitted to.

A reader turns one tool's files into a :class:`Plan`: items keyed by a source key that is unique
within the source, parent links and "waits for" edges between those keys, and a skip (with the
file and line) for every record that is not imported. Nothing here touches the store; the apply
layer (:mod:`statusd.sync.importers.apply`) turns a plan into one store transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["beads", "backlog", "taskmaster"]
SOURCES: tuple[str, ...] = ("beads", "backlog", "taskmaster")

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_METADATA_BYTES = 64 * 1024
# Keys of an item's metadata that the importer owns; anything else a user adds is left alone.
IMPORT_STATE = "import_state"

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


@dataclass
class PlannedItem:
    key: str
    source_id: str
    origin: str  # "path:line" or "path", for warnings that name where a record came from
    title: str
    item_type: str = "task"
    status: str = "active"
    priority: str = "medium"
    description: str | None = None
    parent_key: str | None = None
    deleted: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedEdge:
    """``waiter`` must wait for ``prereq`` (statusd's ``depends_on``)."""

    waiter: str
    prereq: str
    origin: str
    kind: str  # the source's own edge type, for the warning text


@dataclass(frozen=True)
class Skip:
    origin: str
    reason: str
    source_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "reason": self.reason, "source_id": self.source_id}


@dataclass
class Plan:
    source: str
    path: str
    items: list[PlannedItem] = field(default_factory=list)
    edges: list[PlannedEdge] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    records_read: int = 0
    # (key, origin) of records the source itself deleted (beads tombstones): an item imported from
    # one earlier is soft-deleted, unless statusd changed its deleted state since.
    gone: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, origin: str, reason: str, source_id: str | None = None) -> None:
        self.skips.append(Skip(origin, reason, source_id))


def clean(text: str) -> str:
    """Replace what a store cannot keep (NUL, lone surrogates) with U+FFFD."""
    return _BAD_CHARS.sub("\ufffd", text)


def as_list(value: Any) -> list[Any]:
    """A field the tool writes as a list, whatever a hand-edited file put there."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


MAX_NESTING = 16  # deeper source data is kept as JSON text: MCP answers and replication stay shallow


def clean_value(value: Any, depth: int = 0) -> Any:
    """``clean`` every string inside a JSON-shaped value; non-finite numbers and odd types become text."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict | list | tuple) and depth >= MAX_NESTING:
        return clean(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, dict):
        return {clean(str(k)): clean_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v, depth + 1) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean(str(value))


_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON value: what the importer remembers it last wrote."""
    # An import hashes ~12 values per item: strings, None and booleans skip the JSON encoder (the
    # text hashed is what it would have produced, so earlier imports' fingerprints still match).
    if isinstance(value, str):
        raw = "s" + value
    elif value is None:
        raw = "null"
    elif value is True or value is False:
        raw = "true" if value else "false"
    else:
        raw = _FINGERPRINT_JSON.encode(value)
    return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def make_item(
    plan: Plan,
    *,
    key: str,
    source_id: str,
    origin: str,
    source_path: str,
    source_status: str | None,
    title: str | None,
    namespace: dict[str, Any],
    **fields: Any,
) -> PlannedItem:
    """Build an item with the common metadata and fit it to statusd's limits, warning on each cut."""
    raw_title = clean((title or "").strip())
    if not raw_title:
        raw_title = f"Untitled {source_id}"
        plan.warnings.append(f"{origin}: {source_id} has no title; imported as {raw_title!r}")
    ns = {k: clean_value(v) for k, v in namespace.items() if v not in (None, "", [], {})}
    if len(raw_title) > MAX_TITLE:
        ns["full_title"] = raw_title
        raw_title = raw_title[: MAX_TITLE - 1].rstrip() + "…"
    description = fields.pop("description", None)
    if description is not None:
        description = clean(description).strip() or None
    if description is not None and len(description) > MAX_DESCRIPTION:
        ns["description_rest"] = description[MAX_DESCRIPTION:]
        description = description[:MAX_DESCRIPTION]
    metadata: dict[str, Any] = {
        "source": plan.source,
        "source_id": clean(source_id),
        "source_key": clean(key),
        "source_path": clean(source_path),
        "source_status": clean(source_status) if source_status is not None else None,
        plan.source: ns,
    }
    _fit_metadata(plan, origin, source_id, metadata, ns)
    return PlannedItem(
        key=key,
        source_id=source_id,
        origin=origin,
        title=raw_title,
        description=description,
        metadata=metadata,
        **fields,
    )


def _fit_metadata(plan: Plan, origin: str, source_id: str, metadata: dict[str, Any], ns: dict[str, Any]) -> None:
    """Keep metadata under 64 KiB (with room for the importer's state) by trimming the longest texts."""
    budget = MAX_METADATA_BYTES - 2048
    cut: list[str] = []
    while len(json.dumps(metadata, ensure_ascii=False).encode()) > budget:
        name, size = max(((k, len(json.dumps(v, ensure_ascii=False))) for k, v in ns.items()), key=lambda kv: kv[1])
        if size < 64:
            break
        value = ns[name]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        ns[name] = text[: max(32, len(text) // 2)] + " […truncated by import]"
        if name not in cut:
            cut.append(name)
    if cut:
        ns["truncated_fields"] = cut
        plan.warnings.append(f"{origin}: {source_id} metadata over 64 KiB; shortened {', '.join(cut)}")
