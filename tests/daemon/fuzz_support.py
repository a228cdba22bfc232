"""Helpers for the tool fuzz test (SPEC §12 R6): argument strategies, a raw JSON-RPC session,
store seeding and the store invariant checker."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from statusd.daemon.tools import TOOLS, input_schema
from statusd.limits import MAX_METADATA_BYTES
from statusd.models import MAX_DEPTH, METADATA_RULES, vendor_metadata_defaults
from statusd.store import Store, WriteContext
from statusd.store import entities as ent
from statusd.store.deployments import index_links

ALLOWED_CODES = frozenset(
    {"validation_error", "not_found", "version_mismatch", "depth_limit", "cycle_detected", "duplicate", "unavailable"}
)
SCHEMAS = {name: input_schema(tool) for name, tool in TOOLS.items()}
UNKNOWN_TOOL = "unknown_tool"  # draw_call's expectation for a name not in the tool table

# Twins whose ids share the prefix "abcdef0" (and, per entity, "abcdef0N"): the only way to make
# the "ambiguous prefix" paths reachable without thousands of entities.
SEEDED: dict[str, tuple[str, str]] = {
    kind: (f"abcdef0{n}-0000-4000-8000-000000000001", f"abcdef0{n}-0000-4000-8000-000000000002")
    for n, kind in enumerate(("work_item", "vendor", "enhancement", "deployment"), start=1)
}
AMBIGUOUS_PREFIXES = ("abcdef", "ABCDEF0", "abcdef01", "abcdef02", "abcdef03", "abcdef04", "abcdef01-0000")


def _seed(conn: sqlite3.Connection, ctx: WriteContext) -> None:
    for n, ident in enumerate(SEEDED["work_item"]):
        values = {"item_type": "task", "title": f"seed item {n}", "status": "active", "priority": "medium"}
        ent.insert(conn, ctx, ent.WORK_ITEM, {**values, "depth": 0, "metadata": {}}, ident)
    for n, ident in enumerate(SEEDED["vendor"]):
        values = {"name": f"seed-vendor-{n}", "status": "broken", "metadata": vendor_metadata_defaults()}
        ent.insert(conn, ctx, ent.VENDOR, values, ident)
    for n, ident in enumerate(SEEDED["enhancement"]):
        values = {"title": f"seed enhancement {n}", "priority": "low", "status": "planned"}
        ent.insert(
            conn, ctx, ent.ENHANCEMENT, {**values, "requires_constitutional_principles": [], "depends_on": []}, ident
        )
    for n, ident in enumerate(SEEDED["deployment"]):
        metadata = {
            "pr_number": n + 1,
            "pr_title": "seed",
            "commit_hash": "a" * 40,
            "test_summary": {"passed": 1},
            "constitutional_compliance": True,
        }
        values = {"timestamp": ctx.now, "metadata": metadata, "vendor_ids": [], "work_item_ids": []}
        index_links(conn, ent.insert(conn, ctx, ent.DEPLOYMENT, values, ident))


def seed_store(path: Path) -> None:
    """Create the store with the twin entities, through the store's own write path."""
    store = Store(path, machine="seed")
    store.open()
    try:
        store.write_sync(_seed, WriteContext(actor="seed"))
    finally:
        store.close()


# --- the daemon's entities as the run learns them ---------------------------------------------------


@dataclass
class Pool:
    """What the run has learned about the daemon's entities: ids, versions, names, cursors."""

    items: dict[str, int] = field(default_factory=dict)  # id -> version
    vendors: dict[str, list[Any]] = field(default_factory=dict)  # id -> [name, version]
    enhancements: dict[str, int] = field(default_factory=dict)
    deployments: set[str] = field(default_factory=set)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    cursors: list[str] = field(default_factory=list)
    config_version: int = 1
    calls: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    created_items: int = 0
    max_depth_seen: int = 0
    depths: dict[str, int] = field(default_factory=dict)  # id -> depth, for parents that deepen the tree

    @classmethod
    def seeded(cls) -> Pool:
        pool = cls()
        for ident in SEEDED["work_item"]:
            pool.items[ident] = 1
        for n, ident in enumerate(SEEDED["vendor"]):
            pool.vendors[ident] = [f"seed-vendor-{n}", 1]
        for ident in SEEDED["enhancement"]:
            pool.enhancements[ident] = 1
        pool.deployments.update(SEEDED["deployment"])
        return pool

    def full_id(self, text: Any, known: Any) -> str | None:
        if not isinstance(text, str):
            return None
        key = text.strip().lower()
        hits = [i for i in known if i.startswith(key)] if len(key) >= 6 else []
        return hits[0] if len(hits) == 1 else None

    def _item(self, row: dict[str, Any]) -> None:
        if isinstance(row.get("id"), str) and "version" in row:
            self.items[row["id"]] = row["version"]
            self.depths[row["id"]] = row.get("depth") or 0
            self.max_depth_seen = max(self.max_depth_seen, self.depths[row["id"]])

    def _vendor(self, row: dict[str, Any]) -> None:
        self.vendors[row["id"]] = [row["name"], row["version"]]

    def learn(self, tool: str, out: dict[str, Any]) -> None:
        """Remember ids, versions, names and cursors from a successful result."""
        if tool in ("create_work_item", "update_work_item", "query_work_item"):
            self._item(out)
            self.created_items += tool == "create_work_item"
        elif tool == "claim_work_item" and out.get("claimed"):
            self._item(out)
        elif tool in ("list_work_items", "query_archived_work_items"):
            for row in out["items"]:
                self._item(row)
            if out.get("next_cursor"):
                self.cursors.append(out["next_cursor"])
        elif tool in ("add_dependency", "remove_dependency"):
            edge = (out["work_item_id"], out["depends_on_id"], out["dependency_type"])
            (self.edges.add if tool == "add_dependency" else self.edges.discard)(edge)
        elif tool in ("create_vendor", "update_vendor_status"):
            self._vendor(out)
        elif tool == "query_vendor_status":
            for row in out.get("vendors", [out] if "name" in out else []):
                self._vendor(row)
        elif tool in ("create_enhancement", "update_enhancement"):
            self.enhancements[out["id"]] = out["version"]
        elif tool == "list_enhancements":
            self.enhancements.update({e["id"]: e["version"] for e in out["enhancements"]})
        elif tool in ("record_deployment", "query_deployment"):
            self.deployments.add(out["id"])
        elif tool == "list_deployments":
            self.deployments.update(d["id"] for d in out["deployments"])
        elif tool in ("get_project_configuration", "update_project_configuration"):
            self.config_version = out["version"]
        elif tool == "generate_full_status":
            self.config_version = out["configuration"]["version"]


# --- values ------------------------------------------------------------------------------------

ODD = [
    "\x00", "a\x00b", "\u202e", "\ufeff", "\ufffe", "\U0001d518\U0001d52b\U0001d526", "\U0010ffff", "e\u0301",
    "\u0000\u0001\u001f", "😀" * 3, "\n", "\r\n", "\t", "%", "_", "\\", "'", '"', "root", " ", "",
]  # fmt: skip
SQLISH = [
    "'; DROP TABLE work_items;--",
    '" OR 1=1 --',
    "x' OR '1'='1",
    "1; DELETE FROM history",
    "%' ESCAPE '\\",
    "abcdef' OR id LIKE '%",
    "') UNION SELECT * FROM vendors --",
]
# Nastiest first: hypothesis draws (and shrinks towards) the first elements most often.
HOSTILE_NUMBERS = [
    10**400, 2**63, -(2**63) - 1, 2**1024, 2**64 + 1, -(10**400), 10**30, -(10**30), 2**63 - 1, -(2**63), -1, 0,
    1e308, -1e308, 1.7976931348623157e308, 5e-324, 0.5, -0.0, 1e-7,
]  # fmt: skip

chars = st.characters(exclude_categories=("Cs",))
odd_text = st.one_of(st.text(chars, max_size=24), st.sampled_from(ODD + SQLISH))


def text_between(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(chars, min_size=lo, max_size=hi)


huge_text = st.builds(
    lambda seed, n: (seed * (n // len(seed) + 1))[:n],
    st.text(chars, min_size=1, max_size=6) | st.sampled_from(["\x00", "\U0010ffff", "é", "'"]),
    st.integers(20_000, 100_000),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_NUMBERS),
    odd_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


# Deeper than about 200 levels the SDK's JSON parser gives up; deeper than about 250 the official
# client cannot serialise a request at all (the raw session covers that range).
deep_values = st.builds(nested, st.integers(1, 240), st.sampled_from(["list", "dict"]))
hostile_values = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.sampled_from(ODD + SQLISH),
    st.sampled_from([None, True, False, [], {}, [None], {"": None}, ["a"] * 3]),
    huge_text,
    deep_values,
    json_values,
)
hex_text = st.text("0123456789abcdefABCDEF", min_size=7, max_size=40)
quarters = st.builds(
    lambda y, q, human: f"Q{q} {y}" if human else f"{y}-Q{q}", st.integers(1990, 2100), st.integers(1, 4), st.booleans()
)
tz_offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
)
timestamps = st.one_of(
    # The ends of the representable range, with offsets that may push them past it in UTC.
    st.builds(
        lambda d, tz: d.isoformat() + tz,
        st.sampled_from([datetime.min, datetime.max]),
        st.sampled_from(["+01:00", "-01:00", "+23:59", "-23:59", "Z", ""]),
    ),
    st.builds(lambda d, tz: d.isoformat() + tz, st.datetimes(), st.sampled_from(["", "Z", "z"]) | tz_offsets),
)
vendor_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,30}", fullmatch=True)
garbage_cursors = st.one_of(
    st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    json_values.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()[:200]),
    st.sampled_from(['["\\ud800", "x"]', "[1, 2]", '{"a": 1, "b": 2}', "[[], {}]", '["", ""]']).map(
        lambda s: base64.urlsafe_b64encode(s.encode()).decode()
    ),
    st.text(chars, max_size=40),
    st.sampled_from(["", "====", "!!!", "a", "\x00"]),
)
bad_ids = st.one_of(
    st.text("0123456789abcdef", min_size=1, max_size=5),
    st.text("ghijklmnopxyz!@ ", min_size=6, max_size=36),
    st.sampled_from(["------", "abcdef\x00", "zzzzzz", "12345g", "abc-de", " " * 8, "0x1234ab"]),
    st.sampled_from(AMBIGUOUS_PREFIXES),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u)[:8]),
    st.text("0123456789abcdef", min_size=37, max_size=64),
)


@dataclass(frozen=True)
class Ref:
    """Something only the running daemon knows (an id, a name, a version, a cursor).

    Strategies draw these placeholders and ``resolve`` fills them in just before the call: what
    hypothesis draws must not depend on state outside the example, or it cannot replay or shrink.
    """

    kind: str
    index: int
    form: int


def ref(kind: str) -> st.SearchStrategy[Ref]:
    return st.builds(Ref, st.just(kind), st.integers(0, 2**16), st.integers(0, 9))


def _id_form(ident: str, r: Ref) -> str:
    """A full id or an accepted variant of it (prefix, upper case, padded), or a fresh id."""
    if r.form <= 4:
        return ident
    if r.form <= 6:
        return ident[: 6 + r.index % 7]
    if r.form == 7:
        return ident.upper()
    if r.form == 8:
        return f" {ident} "
    return str(uuid.UUID(int=r.index * 7919 + r.form, version=4))  # not_found


def resolve(pool: Pool, tool: str, args: Any) -> Any:
    """Replace every Ref in the arguments by what the pool knows now; versions last."""
    if not isinstance(args, dict):
        return args
    out = {k: _resolve_value(pool, v) for k, v in args.items() if not isinstance(v, Ref) or v.kind != "version"}
    for key, value in args.items():
        if isinstance(value, Ref) and value.kind == "version":
            out[key] = _version(pool, tool, out) if value.form <= 8 else 1 + value.index % 9
    return {k: v for k, v in out.items() if v is not OMIT}


def _resolve_value(pool: Pool, value: Any) -> Any:
    if isinstance(value, list):
        return [_resolve_value(pool, v) for v in value]
    if not isinstance(value, Ref):
        return value
    r = value
    if r.kind == "cursor":
        return pool.cursors[r.index % len(pool.cursors)] if pool.cursors else OMIT
    if r.kind == "vendor_name":
        names = sorted(v[0] for v in pool.vendors.values())
        name = names[r.index % len(names)]
        return [name, name.upper(), name.lower(), f" {name} "][r.form % 4]
    if r.kind in ("edge_from", "edge_to") and pool.edges:
        edge = sorted(pool.edges)[r.index % len(pool.edges)]
        return _id_form(edge[0] if r.kind == "edge_from" else edge[1], Ref(r.kind, r.index, r.form % 5))
    shallow = [i for i, d in pool.depths.items() if d < DEEP_TARGET]  # a child of these reaches at most the target
    if r.kind == "deep_work_item" and shallow:
        deepest = sorted(shallow, key=lambda i: (-pool.depths[i], i))[:3]
        return _id_form(deepest[r.index % len(deepest)], Ref(r.kind, r.index, r.form % 5))
    known = {
        "enhancement": pool.enhancements,
        "deployment": pool.deployments,
        "vendor": pool.vendors,
        "any": [*pool.items, *pool.vendors, *pool.enhancements, *pool.deployments],
    }.get(r.kind, pool.items)
    ids = sorted(known)
    return _id_form(ids[r.index % len(ids)], r)


def _version(pool: Pool, tool: str, args: dict[str, Any]) -> int:
    if tool == "update_work_item":
        ident = pool.full_id(args.get("id"), pool.items)
        return pool.items[ident] if ident else 1
    if tool == "update_enhancement":
        ident = pool.full_id(args.get("id"), pool.enhancements)
        return pool.enhancements[ident] if ident else 1
    if tool == "update_vendor_status":
        name = str(args.get("name", "")).strip().lower()
        return next((int(v[1]) for v in pool.vendors.values() if v[0].lower() == name), 1)
    return pool.config_version


# --- metadata by entity ---------------------------------------------------------------------------

_ITEM_META: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "project": {
        "description": text_between(0, 100),
        "target_quarter": quarters,
        "constitutional_principles": st.lists(text_between(1, 20), max_size=3),
    },
    "session": {
        "token_budget": st.integers(1_000, 1_000_000),
        "prompts_count": st.integers(0, 10**6),
        "yaml_frontmatter": st.dictionaries(text_between(1, 8), json_scalars, max_size=2).map(
            lambda d: {**d, "schema_version": "1.0"}
        ),
    },
    "task": {
        "estimated_hours": st.integers(0, 1000) | st.floats(0, 1000),
        "actual_hours": st.integers(0, 1000) | st.floats(0, 1000),
        "blocked_reason": text_between(0, 80),
    },
    "research": {
        "research_questions": st.lists(text_between(1, 30), max_size=3),
        "findings_summary": text_between(0, 200),
        "references": st.lists(text_between(1, 30), max_size=3),
    },
}
assert {k: set(v) for k, v in _ITEM_META.items()} == {k: set(v) for k, v in METADATA_RULES.items()}


# Values at the edge of (or just past) what a known metadata key accepts.
_NUMERIC_KEYS = {"token_budget", "prompts_count", "estimated_hours", "actual_hours"}
_NUMBER_EDGES = st.sampled_from(HOSTILE_NUMBERS) | st.sampled_from(
    [1000, 1000.0, 1000.0000001, 999, 1_000_000, 1_000_001]
)
_META_EDGES = st.one_of(
    st.sampled_from([*HOSTILE_NUMBERS, True, None, "", "x" * 501, "x" * 2001, [], ["\x00"], {}]),
    text_between(0, 30),
    st.lists(st.sampled_from([1, None, "", "x"]), max_size=3),
)


@st.composite
def item_metadata(draw: st.DrawFn, item_type: str | None, update: bool) -> dict[str, Any]:
    """Known keys of one item type (on an update the type is a guess: other types' keys are kept as unknown)."""
    rules = _ITEM_META[item_type or draw(st.sampled_from(sorted(_ITEM_META)))]
    out = {
        k: draw((_NUMBER_EDGES | s) if k in _NUMERIC_KEYS else (s | _META_EDGES))
        for k, s in rules.items()
        if draw(st.booleans())
    }
    out.update(draw(st.dictionaries(odd_text, json_values, max_size=2)))
    if update and draw(st.booleans()):
        out[draw(st.sampled_from(sorted(rules)))] = None  # null removes a key
    return out


@st.composite
def vendor_metadata(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["format_support"] = draw(st.dictionaries(st.sampled_from(["excel", "csv", "pdf", "ocr"]), st.booleans()))
    if draw(st.booleans()):
        passing, skipped, extra = draw(st.integers(0, 10**6)), draw(st.integers(0, 100)), draw(st.integers(0, 100))
        out["test_results"] = {"passing": passing, "total": passing + skipped + extra, "skipped": skipped}
    if draw(st.booleans()):
        out["extractor_version"] = draw(text_between(1, 50))
    if draw(st.booleans()):
        out["manifest_compliant"] = draw(st.booleans())
    out.update(draw(st.dictionaries(odd_text, json_values, max_size=2)))
    return out


deployment_metadata = st.fixed_dictionaries(
    {
        "pr_number": st.integers(1, 10**6),
        "pr_title": text_between(1, 60).filter(str.strip),
        "commit_hash": hex_text,
        "test_summary": st.dictionaries(st.sampled_from(["passed", "failed", "skipped", "x"]), st.integers(0, 10**9)),
        "constitutional_compliance": st.booleans(),
    },
    optional={"summary": text_between(0, 100), "extra": json_values},
)


# --- arguments -----------------------------------------------------------------------------------

OMIT = object()
_FIRST = ("id", "name", "item_type", "work_item_id", "version")
DEEP_TARGET = 3  # the depth the fuzz test's coverage floor asks for; deeper parents only hit depth_limit
_WORK_ITEM_ID_KEYS = {"parent_id", "work_item_id", "depends_on_id", "current_session_id"}
_ID_KIND = {"update_enhancement": "enhancement", "query_deployment": "deployment", "query_history": "any"}


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit a (trimmed pydantic) JSON schema."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    if "anyOf" in schema:
        return st.one_of([from_schema(b) for b in schema["anyOf"] if b.get("type") != "null"])
    kind = schema.get("type")
    if kind == "string":
        lo = schema.get("minLength", 0)
        return text_between(lo, max(lo, min(schema.get("maxLength", 40), 40)))
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        edges = [
            n for n in HOSTILE_NUMBERS if isinstance(n, int) and (lo is None or n >= lo) and (hi is None or n <= hi)
        ]
        typical = st.integers(lo if lo is not None else -1000, hi if hi is not None else (lo or 0) + 1000)
        return typical | st.integers(lo, hi) | st.sampled_from(edges or [lo])
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object":
        return st.dictionaries(odd_text, json_values, max_size=3)
    return json_values


def field_value(tool: str, key: str, schema: dict[str, Any], args: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values for one argument, aimed at real entities."""
    if key == "id":
        return ref(_ID_KIND.get(tool, "work_item"))
    if key in _WORK_ITEM_ID_KEYS:
        if tool == "remove_dependency" and key in ("work_item_id", "depends_on_id"):
            return ref("edge_from" if key == "work_item_id" else "edge_to") | ref("work_item")
        if tool == "list_work_items" and key == "parent_id":
            return st.just("root") | ref("work_item")
        if tool == "create_work_item" and key == "parent_id":
            # Uniform parents rarely chain three creates, so the tree often stayed shallow (a
            # flaky coverage floor); half the time nest under one of the deepest items.
            return ref("deep_work_item") | ref("work_item")
        return ref("work_item")
    if key == "version":
        return ref("version")
    if key == "name":
        return vendor_names | ref("vendor_name") if tool == "create_vendor" else ref("vendor_name") | vendor_names
    if key == "vendor":
        return ref("vendor_name") | vendor_names
    if key == "metadata":
        if tool == "record_deployment":
            return deployment_metadata
        if tool in ("create_vendor", "update_vendor_status"):
            return vendor_metadata()
        return item_metadata(args.get("item_type"), tool == "update_work_item")
    if key in ("vendor_ids", "work_item_ids", "depends_on"):
        kind = {"vendor_ids": "vendor", "work_item_ids": "work_item", "depends_on": "enhancement"}[key]
        return st.lists(ref(kind).map(lambda r: Ref(r.kind, r.index, r.form % 9)), max_size=3)
    if key in ("timestamp", "since"):
        return timestamps
    if key == "target_quarter":
        return quarters
    if key in ("commit_hash", "git_head_commit"):
        return hex_text
    if key == "cursor":
        return ref("cursor") | garbage_cursors
    if key == "title":
        return text_between(1, 60).filter(str.strip)
    if key == "description":
        return text_between(0, 200) | huge_text.map(lambda s: s[:20_000])
    if key == "text":
        return text_between(1, 8) | st.sampled_from(["seed", "%", "_", "\\", "'"])
    if tool == "migrate_legacy_markdown" and key == "path":
        # Files the daemon's project directory really has (relative paths resolve there): its own
        # mirror (a re-import: nothing new), its config and its log (free-form text, nothing to import).
        return st.sampled_from([".project_status.md", "statusd.toml", "daemon.log"]) | from_schema(schema)
    return from_schema(schema)


@st.composite
def valid_args(draw: st.DrawFn, tool: str) -> dict[str, Any]:
    schema = SCHEMAS[tool]
    required = set(schema.get("required", []))
    args: dict[str, Any] = {}
    for key in sorted(schema["properties"], key=lambda k: (k not in _FIRST, _FIRST.index(k) if k in _FIRST else 0, k)):
        if key in required or draw(st.integers(0, 2), label=f"use {key}"):
            args[key] = draw(field_value(tool, key, schema["properties"][key], args), label=key)
    return args


_MUTATIONS = ["value", "huge", "cursor", "bad_id", "drop_required", "unknown_key"]


def _id_keys(props: list[str]) -> list[str]:
    return [k for k in props if k.endswith(("id", "ids", "depends_on"))]


def certain_error(tool: str, args: dict[str, Any]) -> str | None:
    """``validation_error`` when the argument model must refuse ``args`` whatever the store holds."""
    schema = SCHEMAS[tool]
    if set(args) - set(schema["properties"]) or set(schema.get("required", [])) - set(args):
        return "validation_error"  # an unknown argument, or a required one missing
    for key in _id_keys(sorted(schema["properties"])):
        values = args.get(key) if isinstance(args.get(key), list) else [args.get(key)]
        if any(isinstance(v, str) and not 6 <= len(v) <= 36 and v != "root" for v in values):
            return "validation_error"  # ids are 6-36 characters before anything looks them up
    if _unstorable(args):
        return "validation_error"  # SPEC §4.2 input limits, checked before anything else
    return None


def _unstorable(args: dict[str, Any]) -> bool:
    """A NUL character in any key or string, or a metadata object over 64 KiB (compact UTF-8)."""
    stack: list[Any] = [args]
    while stack:
        value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, dict):
            if any(isinstance(k, str) and "\x00" in k for k in value):
                return True
            metadata = value.get("metadata")
            if isinstance(metadata, dict) and len(_compact(metadata)) > MAX_METADATA_BYTES:
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


@st.composite
def mutate(draw: st.DrawFn, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Turn valid-shaped arguments hostile: unknown keys, missing ones, bad ids, garbage values."""
    schema = SCHEMAS[tool]
    props = sorted(schema["properties"])
    out = dict(args)
    for kind in draw(st.lists(st.sampled_from(_MUTATIONS[:1] + _MUTATIONS), min_size=1, max_size=3), label="mutations"):
        if kind == "unknown_key" or (kind == "drop_required" and not schema.get("required")):
            key = draw(odd_text.filter(lambda k: k not in props), label="unknown key")
            out[key] = draw(json_values | hostile_values)
        elif kind == "drop_required":
            out.pop(draw(st.sampled_from(sorted(schema["required"]))), None)
        elif kind == "bad_id" and _id_keys(props):
            key = draw(st.sampled_from(_id_keys(props)))
            bad = draw(bad_ids, label="bad id")
            out[key] = [bad] if key.endswith("ids") else bad
        elif kind == "cursor" and "cursor" in props:
            out["cursor"] = draw(garbage_cursors, label="cursor")
        elif kind == "huge":
            out[draw(st.sampled_from(props))] = draw(huge_text)
        else:
            out[draw(st.sampled_from(props), label="key")] = draw(hostile_values, label="hostile")
    return out


_TOOL_WEIGHTS = sorted(TOOLS) + ["create_work_item"] * 4 + ["update_work_item", "add_dependency", "claim_work_item"] * 2


@st.composite
def draw_call(draw: st.DrawFn, tool: str | None = None) -> tuple[str, Any, str | None]:
    """(tool, arguments with Refs, the error code the result must carry or None); any tool by default."""
    # Hypothesis favours small choices, which would pick the first tools far more often than the
    # rest; a seeded Random picks the tool and the kind of call evenly (and still reproducibly).
    dice = draw(st.randoms(use_true_random=True), label="dice")
    if tool is None:
        if dice.random() < 0.02:
            # An unknown tool is the protocol's -32602, not a tool result (SPEC §4.4).
            return draw(st.text(chars, min_size=1, max_size=20).filter(lambda n: n not in TOOLS)), {}, UNKNOWN_TOOL
        tool = dice.choice(_TOOL_WEIGHTS)
    args = draw(valid_args(tool), label=f"{tool} args")
    if dice.random() < 0.4:
        args = draw(mutate(tool, args), label="mutated")
    return tool, args, certain_error(tool, args)


# --- raw JSON-RPC ----------------------------------------------------------------------------------

_ids = itertools.count(1)


@st.composite
def draw_raw_line(draw: st.DrawFn, tool: str) -> tuple[str, int | str | None, bool]:
    """A line the official client could not send; the id its answer must carry (None: not answerable);
    whether an error with a null id is an acceptable answer (JSON-RPC's answer when the id cannot be read)."""
    rid: int | str = draw(st.sampled_from([next(_ids), f"raw-{next(_ids)}"]))

    def request(arguments: str, name: str = tool) -> str:
        params = f'{{"name":{json.dumps(name)},"arguments":{arguments}}}'
        return f'{{"jsonrpc":"2.0","id":{json.dumps(rid)},"method":"tools/call","params":{params}}}'

    depth = draw(st.integers(190, 3000))
    kinds = ["non_object", "surrogate_value", "surrogate_key", "deep", "not_json", "bad_method", "bad_params", "nul"]
    kind = draw(st.sampled_from([*kinds, "non_finite"]))
    if kind == "non_finite":  # Python's and pydantic's parsers read these as inf/nan; nothing may store them
        number = draw(st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1E400"]))
        return request(f'{{"actor":"x","metadata":{{"n":[{number}]}},"name":"x","limit":{number}}}'), rid, False
    if kind == "non_object":
        return request(draw(st.sampled_from(["[1,2]", '"x"', "5", "true", "[]", "-1e400", '"{}"']))), rid, False
    if kind == "surrogate_value":
        return (
            request('{"item_type":"task","title":"\\ud800 lone","metadata":{"k":"\\udfff"}}', "create_work_item"),
            rid,
            False,
        )
    if kind == "surrogate_key":
        return request('{"\\ud83d":1,"name":"x"}'), rid, False
    if kind == "deep":
        inner = "[" * depth + "]" * depth if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
        # Deeper than Python's parser goes (about 1000 levels) not even the id can be read.
        deep = request(f'{{"item_type":"task","title":"deep","metadata":{{"k":{inner}}}}}', "create_work_item")
        return deep, rid, depth > 800
    if kind == "not_json":
        garbage = ['{"jsonrpc":"2.0","id":', "not json at all", "\x00\x01", "[1,2,3]", "{}"]
        return draw(st.sampled_from(garbage)), None, True
    if kind == "bad_method":
        return f'{{"jsonrpc":"2.0","id":{json.dumps(rid)},"method":"no/such/method","params":{{}}}}', rid, False
    if kind == "bad_params":
        params = draw(st.sampled_from(["[1]", '"x"', '{"arguments":{}}', '{"name":5}', '{"name":null}']))
        return f'{{"jsonrpc":"2.0","id":{json.dumps(rid)},"method":"tools/call","params":{params}}}', rid, False
    return request('{"actor":"a\\u0000b","name":"x\\u0000"}'), rid, False


def _non_standard(constant: str) -> Any:
    raise AssertionError(f"answer is not standard JSON: it holds {constant}")


def strict_json(text: str | bytes) -> Any:
    """Parse JSON as a standard parser (JavaScript's, Go's, Postgres') would: no NaN or Infinity."""
    return json.loads(text, parse_constant=_non_standard)


class RawSession:
    """Newline-delimited JSON-RPC straight on the socket, for what the official client cannot send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout

    @classmethod
    @asynccontextmanager
    async def connect(cls, path: Path, answer_within: float) -> AsyncIterator[RawSession]:
        reader, writer = await asyncio.open_unix_connection(path, limit=64 * 1024 * 1024)
        raw = cls(reader, writer, answer_within)
        try:
            init = {
                "protocolVersion": LATEST_HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "raw-fuzz", "version": "0"},
            }
            answer = await raw.send_line(
                json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": init}), "init"
            )
            assert answer is not None and "result" in answer, answer
            await raw.send_line('{"jsonrpc":"2.0","method":"notifications/initialized"}', None)
            yield raw
        finally:
            writer.close()
            await writer.wait_closed()

    async def send_line(self, line: str, request_id: int | str | None, null_ok: bool = False) -> dict[str, Any] | None:
        self.writer.write(line.encode("utf-8", "surrogatepass") + b"\n")
        await self.writer.drain()
        if request_id is None:
            return None
        async with asyncio.timeout(self.timeout):
            while True:
                raw = await self.reader.readline()
                assert raw, f"connection closed while waiting for the answer to {line[:200]!r}"
                message = strict_json(raw)
                if message.get("id") == request_id or (null_ok and message.get("id") is None and "error" in message):
                    return dict(message)

    def check_answer(self, line: str, request_id: Any, answer: dict[str, Any] | None, log: str) -> None:
        if request_id is None:
            return
        where = f"raw {line[:300]!r}"
        assert answer is not None, where
        if "error" in answer:  # a JSON-RPC error is the right answer to a malformed request
            error = answer["error"]
            assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), f"{where}: {answer}"
            assert error["code"] != -32603, f"{where}: internal JSON-RPC error {answer}\n{log}"
            return
        result = answer["result"]
        payload = json.loads(result["content"][0]["text"])
        if result.get("isError"):
            assert payload["error"]["code"] in ALLOWED_CODES, f"{where}: {payload}\n{log}"
        else:
            assert payload["success"] is True, f"{where}: {payload}"

    async def trivial_call(self) -> dict[str, Any]:
        rid = f"trivial-{next(_ids)}"
        line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": "sync_status"}})
        answer = await self.send_line(line, rid)
        assert answer is not None and "result" in answer, answer
        return dict(json.loads(answer["result"]["content"][0]["text"]))


# --- store invariants ------------------------------------------------------------------------------


def store_problems(path: Path) -> list[str]:
    """Check the store read-only (the daemon may hold it open): hierarchy, history, links."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _hierarchy(conn) + _history(conn) + _links(conn)
    finally:
        conn.close()


def _hierarchy(conn: sqlite3.Connection) -> list[str]:
    problems = []
    rows = conn.execute(
        "SELECT c.id, c.depth, c.parent_id, p.id, p.depth "
        "FROM work_items c LEFT JOIN work_items p ON p.id = c.parent_id"
    ).fetchall()
    for ident, depth, parent_id, found, parent_depth in rows:
        if parent_id is None and depth != 0:
            problems.append(f"work item {ident}: root with depth {depth}")
        elif parent_id is not None and found is None:
            problems.append(f"work item {ident}: dangling parent {parent_id}")
        elif parent_id is not None and depth != parent_depth + 1:
            problems.append(f"work item {ident}: depth {depth} under a parent of depth {parent_depth}")
        if depth > MAX_DEPTH:
            problems.append(f"work item {ident}: depth {depth} > {MAX_DEPTH}")
    parents = {r[0]: r[2] for r in rows}
    for start in parents:
        seen, node = {start}, parents[start]
        while node is not None:
            if node in seen:
                problems.append(f"work item {start}: parent cycle through {node}")
                break
            seen.add(node)
            node = parents.get(node)
    return problems


def _history(conn: sqlite3.Connection) -> list[str]:
    problems = []
    for entity in ent.ENTITIES.values():
        name, table = entity.name, entity.table
        for ident, hv, ev in conn.execute(
            f"SELECT h.entity_id, h.version, e.version FROM history h JOIN {table} e ON e.id = h.entity_id "
            "WHERE h.entity = ? AND h.version > e.version",
            (name,),
        ):
            problems.append(f"{name} {ident}: history version {hv} > entity version {ev}")
        for ident, version in conn.execute(
            f"SELECT e.id, e.version FROM {table} e WHERE NOT EXISTS (SELECT 1 FROM history h "
            "WHERE h.entity = ? AND h.entity_id = e.id AND h.version = e.version)",
            (name,),
        ):
            problems.append(f"{name} {ident}: no history row for its current version {version}")
        for ident, version, count in conn.execute(
            f"SELECT e.id, e.version, (SELECT COUNT(DISTINCT h.version) FROM history h WHERE h.entity = ? "
            f"AND h.entity_id = e.id AND h.version BETWEEN 1 AND e.version) AS n FROM {table} e WHERE n != e.version",
            (name,),
        ):
            problems.append(f"{name} {ident}: history covers {count} of versions 1..{version}")
        for ident, version in conn.execute(
            "SELECT entity_id, version FROM history WHERE entity = ? GROUP BY entity_id, version HAVING COUNT(*) > 1",
            (name,),
        ):
            problems.append(f"{name} {ident}: several history rows for version {version}")
        for (ident,) in conn.execute(
            f"SELECT DISTINCT h.entity_id FROM history h WHERE h.entity = ? "
            f"AND NOT EXISTS (SELECT 1 FROM {table} e WHERE e.id = h.entity_id)",
            (name,),
        ):
            problems.append(f"{name} {ident}: history of an entity that does not exist")
    return problems


def _links(conn: sqlite3.Connection) -> list[str]:
    problems = []
    items = {r[0] for r in conn.execute("SELECT id FROM work_items")}
    waits: dict[str, set[str]] = {}
    for ident, a, b, kind, deleted in conn.execute(
        "SELECT id, work_item_id, depends_on_id, dependency_type, deleted_at FROM dependencies"
    ):
        if a not in items or b not in items:
            problems.append(f"dependency {ident}: dangling endpoint {a} -> {b}")
        if a == b:
            problems.append(f"dependency {ident}: self edge on {a}")
        if deleted is None:
            waiter, prereq = (a, b) if kind == "depends_on" else (b, a)
            waits.setdefault(waiter, set()).add(prereq)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in waits.get(node, ()):
            if state.get(nxt) == 1 or (nxt not in state and visit(nxt)):
                return True
        state[node] = 2
        return False

    for node in sorted(waits):
        if node not in state and visit(node):
            problems.append(f"dependency cycle in the waits-for graph through {node}")
            break
    vendors = {r[0] for r in conn.execute("SELECT id FROM vendors")}
    for ident, raw_vendors, raw_items in conn.execute("SELECT id, vendor_ids, work_item_ids FROM deployments"):
        linked = {("vendor", v) for v in json.loads(raw_vendors)} | {("work_item", w) for w in json.loads(raw_items)}
        missing = [t for k, t in linked if t not in (vendors if k == "vendor" else items)]
        if missing:
            problems.append(f"deployment {ident}: dangling links {missing}")
        indexed = set(conn.execute("SELECT kind, target_id FROM deployment_links WHERE deployment_id = ?", (ident,)))
        if indexed != linked:
            problems.append(f"deployment {ident}: link index {sorted(indexed)} != {sorted(linked)}")
    return problems
