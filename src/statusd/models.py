"""Domain vocabulary and validation rules (SPEC §2). No I/O.

Tool arguments are parsed by the pydantic ``*Args`` models (shape and types; unknown arguments are
rejected so a typo is never silently ignored). Metadata rules by item type, for vendors and
for deployments are pydantic models in :mod:`statusd.metadata` (re-exported here); quarters, ids and
commit hashes are plain functions that return the normalised value or raise
:class:`statusd.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from statusd.errors import ValidationError
from statusd.metadata import FORMATS as FORMATS
from statusd.metadata import METADATA_RULES as METADATA_RULES
from statusd.metadata import item_metadata_defaults as item_metadata_defaults
from statusd.metadata import merge_vendor_metadata as merge_vendor_metadata
from statusd.metadata import normalize_commit_hash as normalize_commit_hash
from statusd.metadata import normalize_quarter as normalize_quarter
from statusd.metadata import validate_deployment_metadata as validate_deployment_metadata
from statusd.metadata import validate_item_metadata as validate_item_metadata
from statusd.metadata import validate_vendor_metadata as validate_vendor_metadata
from statusd.metadata import vendor_metadata_defaults as vendor_metadata_defaults

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

_ID_PREFIX = re.compile(r"^[0-9a-fA-F-]{6,36}$")
_VENDOR_NAME = re.compile(r"^[A-Za-z0-9 _-]{1,100}$")


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


def human_quarter(stored: str | None) -> str | None:
    if not stored:
        return None
    year, q = stored.split("-")
    return f"{q} {year}"


def check_vendor_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not _VENDOR_NAME.match(value.strip() or "!"):
        raise ValidationError.one(field, "must be 1-100 characters of letters, digits, space, '_' or '-'")
    return value.strip()


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
