"""Domain vocabulary and validation rules (SPEC §2). No I/O.

Tool arguments are parsed by the pydantic ``*Args`` models (shape and types; unknown arguments are
rejected so a typo is never silently ignored). Entity rules that depend on other values — metadata
by item type, vendor metadata merge, deployment metadata, quarters — are plain functions that
return the normalised value or raise :class:`statusd.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from statusd.errors import ValidationError

ItemType = Literal["project", "session", "task", "research"]
ItemStatus = Literal["active", "blocked", "completed"]
Priority = Literal["critical", "high", "medium", "low"]
VendorStatus = Literal["operational", "broken"]
EnhancementStatus = Literal["planned", "approved", "implementing", "completed"]
DependencyType = Literal["depends_on", "blocks"]
ContextType = Literal["feature", "maintenance", "research"]
Via = Literal["tool", "markdown", "sync", "merge", "migration"]

ITEM_TYPES: tuple[str, ...] = ("project", "session", "task", "research")
ITEM_STATUSES: tuple[str, ...] = ("active", "blocked", "completed")
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
MAX_DEPTH = 4
DEFAULT_TOKEN_BUDGET = 200_000

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ID_PREFIX = re.compile(r"^[0-9a-fA-F-]{6,36}$")
_VENDOR_NAME = re.compile(r"^[A-Za-z0-9 _-]{1,100}$")
_QUARTER = re.compile(r"^\s*(\d{4})\s*-\s*Q([1-4])\s*$", re.IGNORECASE)
_QUARTER_HUMAN = re.compile(r"^\s*Q([1-4])\s+(\d{4})\s*$", re.IGNORECASE)


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(ts: datetime) -> str:
    """Format as UTC ISO-8601 with microseconds and a ``Z`` (sorts lexically)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: Any, field: str) -> str:
    """Accept ISO-8601 text (naive means UTC) and return the canonical form."""
    if not isinstance(value, str):
        raise ValidationError.one(field, "must be an ISO-8601 timestamp string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError.one(field, f"not an ISO-8601 timestamp: {value[:40]!r}") from None
    try:
        return iso(ts)
    except OverflowError:  # e.g. 9999-12-31T23:00-01:00 is past the last representable UTC instant
        raise ValidationError.one(field, f"out of range once converted to UTC: {value[:40]!r}") from None


def new_id() -> str:
    return str(uuid.uuid4())


def check_id_text(value: str, field: str) -> str:
    """Validate a full id or a unique-prefix candidate (≥ 6 hex characters)."""
    text = value.strip().lower()
    if not _ID_PREFIX.match(text) or sum(c != "-" for c in text) < 6:
        raise ValidationError.one(field, "must be an id or an id prefix of at least 6 hex characters")
    return text


def normalize_quarter(value: Any, field: str) -> str:
    """Store quarters as ``YYYY-Qn``; accept ``Qn YYYY`` too."""
    if not isinstance(value, str):
        raise ValidationError.one(field, "must be a quarter like '2026-Q1' or 'Q1 2026'")
    m = _QUARTER.match(value)
    if m:
        return f"{m.group(1)}-Q{m.group(2)}"
    m = _QUARTER_HUMAN.match(value)
    if m:
        return f"{m.group(2)}-Q{m.group(1)}"
    raise ValidationError.one(field, f"must be a quarter like '2026-Q1' or 'Q1 2026', got {value[:20]!r}")


def human_quarter(stored: str | None) -> str | None:
    if not stored:
        return None
    year, q = stored.split("-")
    return f"{q} {year}"


def normalize_commit_hash(value: Any, field: str, *, min_len: int = 7) -> str:
    if not isinstance(value, str) or not (min_len <= len(value) <= 40) or not _HEX.match(value):
        raise ValidationError.one(field, f"must be {min_len}-40 hexadecimal characters")
    return value.lower()


# --- small typed checkers used by the metadata rules -------------------------------------------

Checker = Callable[[Any, str], Any]


def _int(lo: int | None = None, hi: int | None = None) -> Checker:
    def check(v: Any, field: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValidationError.one(field, "must be an integer")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValidationError.one(field, f"must be between {lo} and {hi}" if hi is not None else f"must be ≥ {lo}")
        return v

    return check


def _number(lo: float, hi: float) -> Checker:
    def check(v: Any, field: str) -> float | int:
        # Only floats can be infinite or NaN; math.isfinite() on an int past float range overflows.
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValidationError.one(field, "must be a number")
        if not lo <= v <= hi:
            raise ValidationError.one(field, f"must be between {lo:g} and {hi:g}")
        return v

    return check


def _text(lo: int, hi: int) -> Checker:
    def check(v: Any, field: str) -> str:
        if not isinstance(v, str):
            raise ValidationError.one(field, "must be a string")
        if not lo <= len(v) <= hi:
            raise ValidationError.one(field, f"must be {lo}-{hi} characters")
        return v

    return check


def _bool(v: Any, field: str) -> bool:
    if not isinstance(v, bool):
        raise ValidationError.one(field, "must be true or false")
    return v


def _str_list(v: Any, field: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValidationError.one(field, "must be a list of strings")
    if len(v) > 1000:
        raise ValidationError.one(field, "must have at most 1000 entries")
    return list(v)


def _front_matter(v: Any, field: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValidationError.one(field, "must be an object")
    if "schema_version" not in v:
        raise ValidationError.one(f"{field}.schema_version", "is required in yaml_frontmatter")
    return v


METADATA_RULES: dict[str, dict[str, Checker]] = {
    "project": {
        "description": _text(0, 1000),
        "target_quarter": normalize_quarter,
        "constitutional_principles": _str_list,
    },
    "session": {
        "token_budget": _int(1_000, 1_000_000),
        "prompts_count": _int(0),
        "yaml_frontmatter": _front_matter,
    },
    "task": {
        "estimated_hours": _number(0, 1000),
        "actual_hours": _number(0, 1000),
        "blocked_reason": _text(0, 500),
    },
    "research": {
        "research_questions": _str_list,
        "findings_summary": _text(0, 2000),
        "references": _str_list,
    },
}


def _collect(checks: list[Callable[[], None]]) -> None:
    """Run every check and raise one ValidationError naming every bad field."""
    fields: list[dict[str, Any]] = []
    for check in checks:
        try:
            check()
        except ValidationError as exc:
            fields.extend(exc.fields)
    if fields:
        raise ValidationError(fields)


def validate_item_metadata(item_type: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Validate the known keys for ``item_type``; unknown keys are kept as they are."""
    rules = METADATA_RULES.get(item_type, {})
    out = dict(metadata)

    def make(key: str, rule: Checker) -> Callable[[], None]:
        def run() -> None:
            if key in out and out[key] is not None:
                out[key] = rule(out[key], f"metadata.{key}")

        return run

    _collect([make(k, r) for k, r in rules.items()])
    return out


def item_metadata_defaults(item_type: str, default_token_budget: int) -> dict[str, Any]:
    if item_type == "session":
        return {"token_budget": default_token_budget, "prompts_count": 0}
    return {}


# --- vendors -----------------------------------------------------------------------------------

FORMATS = ("excel", "csv", "pdf", "ocr")


def vendor_metadata_defaults() -> dict[str, Any]:
    return {
        "format_support": dict.fromkeys(FORMATS, False),
        "test_results": {"passing": 0, "total": 0, "skipped": 0},
        "extractor_version": "0.0.0",
        "manifest_compliant": False,
    }


def merge_vendor_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge a partial update into vendor metadata (one level deep for the nested objects)."""
    merged = dict(current)
    for key, value in patch.items():
        if key in ("format_support", "test_results") and isinstance(value, dict):
            base = merged.get(key)
            merged[key] = {**(base if isinstance(base, dict) else {}), **value}
        else:
            merged[key] = value
    return merged


def validate_vendor_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    out = dict(metadata)

    def formats() -> None:
        fs = out.get("format_support")
        if not isinstance(fs, dict):
            raise ValidationError.one("metadata.format_support", "must be an object of booleans")
        unknown = [k for k in fs if k not in FORMATS]
        if unknown:
            raise ValidationError.one("metadata.format_support", f"unknown format(s) {unknown}; known: {list(FORMATS)}")
        out["format_support"] = {f: _bool(fs.get(f, False), f"metadata.format_support.{f}") for f in FORMATS}

    def tests() -> None:
        tr = out.get("test_results")
        if not isinstance(tr, dict):
            raise ValidationError.one("metadata.test_results", "must be an object {passing, total, skipped}")
        unknown = [k for k in tr if k not in ("passing", "total", "skipped")]
        if unknown:
            raise ValidationError.one("metadata.test_results", f"unknown key(s) {unknown}")
        vals = {k: _int(0)(tr.get(k, 0), f"metadata.test_results.{k}") for k in ("passing", "total", "skipped")}
        if vals["passing"] + vals["skipped"] > vals["total"]:
            raise ValidationError.one("metadata.test_results", "passing + skipped must not exceed total", **vals)
        out["test_results"] = vals

    def version() -> None:
        out["extractor_version"] = _text(1, 50)(out.get("extractor_version"), "metadata.extractor_version")

    def compliant() -> None:
        out["manifest_compliant"] = _bool(out.get("manifest_compliant"), "metadata.manifest_compliant")

    _collect([formats, tests, version, compliant])
    return out


def check_vendor_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not _VENDOR_NAME.match(value.strip() or "!"):
        raise ValidationError.one(field, "must be 1-100 characters of letters, digits, space, '_' or '-'")
    return value.strip()


# --- deployments -------------------------------------------------------------------------------


def validate_deployment_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    out = dict(metadata)

    def required(key: str, rule: Checker) -> Callable[[], None]:
        def run() -> None:
            if key not in out:
                raise ValidationError.one(f"metadata.{key}", "is required")
            out[key] = rule(out[key], f"metadata.{key}")

        return run

    def commit() -> None:
        if "commit_hash" not in out:
            raise ValidationError.one("metadata.commit_hash", "is required")
        out["commit_hash"] = normalize_commit_hash(out["commit_hash"], "metadata.commit_hash")
        if len(out["commit_hash"]) < 40:
            out["commit_hash_abbreviated"] = True
        else:
            out.pop("commit_hash_abbreviated", None)

    def summary() -> None:
        ts = out.get("test_summary")
        if ts is None:
            raise ValidationError.one("metadata.test_summary", "is required")
        if not isinstance(ts, dict):
            raise ValidationError.one("metadata.test_summary", "must be an object of non-negative integers")
        for k, v in ts.items():
            _int(0)(v, f"metadata.test_summary.{k}")

    def optional_summary_text() -> None:
        if out.get("summary") is not None:
            _text(0, 20_000)(out["summary"], "metadata.summary")

    _collect(
        [
            required("pr_number", _int(1)),
            required("pr_title", lambda v, f: _text(1, 200)(v.strip() if isinstance(v, str) else v, f)),
            commit,
            summary,
            required("constitutional_compliance", _bool),
            optional_summary_text,
        ]
    )
    return out


# --- tool argument models ----------------------------------------------------------------------


def _strip(v: Any) -> Any:
    return v.strip() if isinstance(v, str) else v


Title = Annotated[str, BeforeValidator(_strip), StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=20_000)]
IdText = Annotated[str, StringConstraints(min_length=6, max_length=36)]
Actor = Annotated[str, StringConstraints(min_length=1, max_length=100)]
MAX_METADATA_NESTING = 32
SQLITE_MAX_INT = 2**63 - 1


def _bounded_nesting(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse metadata nested deeper than MAX_METADATA_NESTING levels.

    Nothing legitimate comes close, and past about 200 levels the MCP SDK can no longer parse a
    request or serialise the answer that would echo it back.
    """
    level: list[Any] = [value]
    for _ in range(MAX_METADATA_NESTING):
        children = (c for node in level for c in (node.values() if isinstance(node, dict) else node))
        level = [c for c in children if isinstance(c, dict | list)]
        if not level:
            return value
    raise ValueError(f"nested deeper than {MAX_METADATA_NESTING} levels")


Metadata = Annotated[dict[str, Any], AfterValidator(_bounded_nesting)]
# A work item's pr_number is an INTEGER column: larger values cannot be stored.
PrNumber = Annotated[int, Field(ge=1, le=SQLITE_MAX_INT)]


class Args(BaseModel):
    """Base of every tool's arguments: unknown arguments are an error, ``actor`` is always allowed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    actor: Actor | None = Field(default=None, description="who is acting (default: the client's name)")


class CreateWorkItemArgs(Args):
    item_type: ItemType
    title: Title
    description: Description | None = None
    status: ItemStatus = "active"
    priority: Priority = "medium"
    parent_id: IdText | None = None
    metadata: Metadata | None = None
    branch_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    commit_hash: str | None = None
    pr_number: PrNumber | None = None


class UpdateWorkItemArgs(Args):
    id: IdText
    version: Annotated[int, Field(ge=1)]
    title: Title | None = None
    description: Description | None = None
    status: ItemStatus | None = None
    priority: Priority | None = None
    parent_id: IdText | None = None
    metadata: Metadata | None = None
    branch_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    commit_hash: str | None = None
    pr_number: PrNumber | None = None
    deleted: bool | None = None
    # The seed's clients send these; they are accepted as aliases of ``actor`` with a warning.
    created_by: Actor | None = None
    updated_by: Actor | None = None


class QueryWorkItemArgs(Args):
    id: IdText
    include_children: bool = False
    include_dependencies: bool = True


class ListWorkItemsArgs(Args):
    item_type: ItemType | None = None
    status: ItemStatus | None = None
    priority: Priority | None = None
    parent_id: IdText | Literal["root"] | None = None
    ready: bool | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    include_deleted: bool = False
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class DependencyArgs(Args):
    work_item_id: IdText
    depends_on_id: IdText
    dependency_type: DependencyType = "depends_on"


class ClaimWorkItemArgs(Args):
    id: IdText | None = None
    item_type: ItemType | None = None
    lease_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30


class CreateVendorArgs(Args):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    status: VendorStatus | None = None
    metadata: Metadata | None = None


class QueryVendorArgs(Args):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    status: VendorStatus | None = None


class UpdateVendorArgs(Args):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    version: Annotated[int, Field(ge=1)]
    status: VendorStatus | None = None
    metadata: Metadata | None = None


class RecordDeploymentArgs(Args):
    metadata: Metadata
    vendor_ids: Annotated[list[IdText], Field(max_length=1000)] | None = None
    work_item_ids: Annotated[list[IdText], Field(max_length=1000)] | None = None
    timestamp: str | None = None


class QueryDeploymentArgs(Args):
    id: IdText


class ListDeploymentsArgs(Args):
    since: str | None = None
    vendor: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class CreateEnhancementArgs(Args):
    title: Title
    description: Description | None = None
    priority: Priority = "medium"
    status: EnhancementStatus = "planned"
    target_quarter: Annotated[str, StringConstraints(max_length=20)] | None = None
    requires_constitutional_principles: Annotated[list[str], Field(max_length=1000)] | None = None
    depends_on: Annotated[list[IdText], Field(max_length=1000)] | None = None


class UpdateEnhancementArgs(Args):
    id: IdText
    version: Annotated[int, Field(ge=1)]
    title: Title | None = None
    description: Description | None = None
    priority: Priority | None = None
    status: EnhancementStatus | None = None
    target_quarter: Annotated[str, StringConstraints(max_length=20)] | None = None
    requires_constitutional_principles: Annotated[list[str], Field(max_length=1000)] | None = None
    depends_on: Annotated[list[IdText], Field(max_length=1000)] | None = None


class ListEnhancementsArgs(Args):
    status: EnhancementStatus | None = None
    priority: Priority | None = None
    target_quarter: Annotated[str, StringConstraints(max_length=20)] | None = None


class NoArgs(Args):
    pass


class UpdateConfigurationArgs(Args):
    version: Annotated[int, Field(ge=1)]
    active_context_type: ContextType | None = None
    current_session_id: IdText | None = None
    git_branch: Annotated[str, StringConstraints(max_length=255)] | None = None
    git_head_commit: str | None = None
    default_token_budget: Annotated[int, Field(ge=1_000, le=1_000_000)] | None = None


class GenerateStatusArgs(Args):
    output_format: Literal["json", "markdown"] = "json"


class MigrateLegacyArgs(Args):
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    dry_run: bool = False
    prompts_dir: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None


class QueryArchivedArgs(Args):
    item_type: ItemType | None = None
    status: ItemStatus | None = None
    priority: Priority | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class ImportTasksArgs(Args):
    source: Literal["beads", "backlog", "taskmaster"]
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    dry_run: bool = False


class QueryHistoryArgs(Args):
    id: IdText
    limit: Annotated[int, Field(ge=1, le=1000)] = 50


def parse_args(model: type[Args], arguments: dict[str, Any] | None) -> Args:
    """Validate tool arguments, turning pydantic's errors into one field-naming ValidationError."""
    try:
        return model.model_validate(arguments or {})
    except PydanticValidationError as exc:
        fields = []
        for err in exc.errors(include_url=False, include_context=False, include_input=False):
            loc = ".".join(str(p) for p in err["loc"])
            kind = err["type"]
            msg = "unknown argument" if kind == "extra_forbidden" else err["msg"]
            fields.append({"field": loc, "message": msg, "type": kind})
        raise ValidationError(fields) from None


class ListConflictsArgs(Args):
    include_resolved: bool = False
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class ResolveConflictArgs(Args):
    id: IdText
    resolution: Literal["keep_remote", "keep_local", "custom", "discard", "retry"]
    values: Metadata | None = Field(default=None, description="custom: field -> value")
