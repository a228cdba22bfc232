"""Metadata rules as pydantic models (SPEC §2.1–§2.4). No I/O.

Each item type, vendors and deployments have a model whose fields carry the rule for one known key;
pydantic runs every field and collects every error, and :func:`_raise` turns them into one
:class:`statusd.errors.ValidationError` with the same ``metadata.<path>`` names and wording as
before. Unknown keys are allowed (``extra="allow"``) and returned as given, never dropped.

The field rules are small functions rather than pydantic's built-in constraints so that messages
stay exactly as documented (pydantic's own say "Input should be…", and ``strict`` numbers would
still turn ``3`` into ``3.0`` for a float field).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from statusd.errors import ValidationError

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_QUARTER = re.compile(r"^\s*(\d{4})\s*-\s*Q([1-4])\s*$", re.IGNORECASE)
_QUARTER_HUMAN = re.compile(r"^\s*Q([1-4])\s+(\d{4})\s*$", re.IGNORECASE)
_RULE = "statusd_rule"  # pydantic error type carrying our own message (in ctx, never formatted)


def _fail(message: str, **details: Any) -> NoReturn:
    raise PydanticCustomError(_RULE, "invalid", {"message": message, "details": details})


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


def normalize_commit_hash(value: Any, field: str, *, min_len: int = 7) -> str:
    if not isinstance(value, str) or not (min_len <= len(value) <= 40) or not _HEX.match(value):
        raise ValidationError.one(field, f"must be {min_len}-40 hexadecimal characters")
    return value.lower()


# --- field rules: each returns the normalised value or calls _fail ------------------------------

Rule = Callable[[Any], Any]


def _int(lo: int, hi: int | None = None) -> Rule:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            _fail("must be an integer")
        if v < lo or (hi is not None and v > hi):
            _fail(f"must be between {lo} and {hi}" if hi is not None else f"must be ≥ {lo}")
        return v

    return check


def _number(lo: float, hi: float) -> Rule:
    def check(v: Any) -> float | int:
        # Only floats can be infinite or NaN; math.isfinite() on an int past float range overflows.
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
            _fail("must be a number")
        if not lo <= v <= hi:
            _fail(f"must be between {lo:g} and {hi:g}")
        return v

    return check


def _text(lo: int, hi: int, *, strip: bool = False) -> Rule:
    def check(v: Any) -> str:
        if not isinstance(v, str):
            _fail("must be a string")
        text: str = v.strip() if strip else v
        if not lo <= len(text) <= hi:
            _fail(f"must be {lo}-{hi} characters")
        return text

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        _fail("must be true or false")
    return v


def _str_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        _fail("must be a list of strings")
    if len(v) > 1000:
        _fail("must have at most 1000 entries")
    return list(v)


def _front_matter(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        _fail("must be an object")
    if "schema_version" not in v:
        raise PydanticCustomError(
            _RULE, "invalid", {"message": "is required in yaml_frontmatter", "details": {}, "sub": "schema_version"}
        )
    return v


def _quarter(v: Any) -> str:
    try:
        return normalize_quarter(v, "")
    except ValidationError as exc:
        _fail(exc.fields[0]["message"])


def _commit(v: Any) -> str:
    try:
        return normalize_commit_hash(v, "")
    except ValidationError as exc:
        _fail(exc.fields[0]["message"])


def _optional(rule: Rule) -> Rule:
    """Item metadata: a key given as null is kept as null, not checked."""

    def check(v: Any) -> Any:
        return None if v is None else rule(v)

    return check


def _raise(exc: PydanticValidationError) -> NoReturn:
    """Turn pydantic's collected errors into one ValidationError naming every ``metadata.`` path."""
    fields: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(["metadata", *(str(p) for p in err["loc"])])
        ctx = err.get("ctx") or {}
        if err["type"] == _RULE:
            if ctx.get("sub"):
                path = f"{path}.{ctx['sub']}"
            fields.append({"field": path, "message": ctx["message"], **ctx["details"]})
        elif err["type"] == "missing":
            fields.append({"field": path, "message": "is required"})
        else:  # not reached by the rules above; kept so nothing is ever swallowed
            fields.append({"field": path, "message": err["msg"], "type": err["type"]})
    raise ValidationError(fields) from None


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- work items (SPEC §2.1) --------------------------------------------------------------------


class ProjectMetadata(_Metadata):
    description: Annotated[Any, PlainValidator(_optional(_text(0, 1000)))] = None
    target_quarter: Annotated[Any, PlainValidator(_optional(_quarter))] = None
    constitutional_principles: Annotated[Any, PlainValidator(_optional(_str_list))] = None


class SessionMetadata(_Metadata):
    token_budget: Annotated[Any, PlainValidator(_optional(_int(1_000, 1_000_000)))] = None
    prompts_count: Annotated[Any, PlainValidator(_optional(_int(0)))] = None
    yaml_frontmatter: Annotated[Any, PlainValidator(_optional(_front_matter))] = None


class TaskMetadata(_Metadata):
    estimated_hours: Annotated[Any, PlainValidator(_optional(_number(0, 1000)))] = None
    actual_hours: Annotated[Any, PlainValidator(_optional(_number(0, 1000)))] = None
    blocked_reason: Annotated[Any, PlainValidator(_optional(_text(0, 500)))] = None


class ResearchMetadata(_Metadata):
    research_questions: Annotated[Any, PlainValidator(_optional(_str_list))] = None
    findings_summary: Annotated[Any, PlainValidator(_optional(_text(0, 2000)))] = None
    references: Annotated[Any, PlainValidator(_optional(_str_list))] = None


ITEM_METADATA_MODELS: dict[str, type[_Metadata]] = {
    "project": ProjectMetadata,
    "session": SessionMetadata,
    "task": TaskMetadata,
    "research": ResearchMetadata,
}

# The known keys per item type (their pydantic field definitions), for callers that list them.
METADATA_RULES: dict[str, dict[str, FieldInfo]] = {t: dict(mod.model_fields) for t, mod in ITEM_METADATA_MODELS.items()}


def validate_item_metadata(item_type: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Validate the known keys for ``item_type``; unknown keys are kept as they are."""
    out = dict(metadata)
    model = ITEM_METADATA_MODELS.get(item_type)
    if model is None:
        return out
    try:
        parsed = model.model_validate(out)
    except PydanticValidationError as exc:
        _raise(exc)
    for key in parsed.model_fields_set & model.model_fields.keys():
        out[key] = getattr(parsed, key)
    return out


def item_metadata_defaults(item_type: str, default_token_budget: int) -> dict[str, Any]:
    if item_type == "session":
        return {"token_budget": default_token_budget, "prompts_count": 0}
    return {}


# --- vendors (SPEC §2.2) -----------------------------------------------------------------------

FORMATS = ("excel", "csv", "pdf", "ocr")
_COUNTS = ("passing", "total", "skipped")


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


Flag = Annotated[Any, PlainValidator(_bool)]
Count = Annotated[Any, PlainValidator(_int(0))]


class _Formats(TypedDict):
    excel: Flag
    csv: Flag
    pdf: Flag
    ocr: Flag


class _Counts(TypedDict):
    passing: Count
    total: Count
    skipped: Count


def _formats_shape(data: Any) -> dict[str, Any]:
    """Every known format, missing ones false; an unknown format is one error on the object."""
    if not isinstance(data, dict):
        _fail("must be an object of booleans")
    unknown = [k for k in data if k not in FORMATS]
    if unknown:
        _fail(f"unknown format(s) {unknown}; known: {list(FORMATS)}")
    return {f: data.get(f, False) for f in FORMATS}


def _counts_shape(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        _fail("must be an object {passing, total, skipped}")
    unknown = [k for k in data if k not in _COUNTS]
    if unknown:
        _fail(f"unknown key(s) {unknown}")
    return {k: data.get(k, 0) for k in _COUNTS}


def _counts_consistent(counts: _Counts) -> _Counts:
    if counts["passing"] + counts["skipped"] > counts["total"]:
        _fail("passing + skipped must not exceed total", **counts)
    return counts


# Nested objects are TypedDicts (plain dicts out, each key's error collected), not nested models:
# a model per level cost more than twice the hand-written checks on the vendor write path.
FormatSupport = Annotated[_Formats, BeforeValidator(_formats_shape)]
TestResults = Annotated[_Counts, BeforeValidator(_counts_shape), AfterValidator(_counts_consistent)]


class VendorMetadata(_Metadata):
    format_support: FormatSupport
    test_results: TestResults
    extractor_version: Annotated[Any, PlainValidator(_text(1, 50))]
    manifest_compliant: Flag


# A missing key is checked as null, so it is named with its usual message rather than "is required".
_VENDOR_KEYS_AS_NULL = dict.fromkeys(VendorMetadata.model_fields)


def validate_vendor_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    out = dict(metadata)
    try:
        parsed = VendorMetadata.model_validate({**_VENDOR_KEYS_AS_NULL, **out})
    except PydanticValidationError as exc:
        _raise(exc)
    out["format_support"] = parsed.format_support
    out["test_results"] = parsed.test_results
    out["extractor_version"] = parsed.extractor_version
    out["manifest_compliant"] = parsed.manifest_compliant
    return out


# --- deployments (SPEC §2.3) -------------------------------------------------------------------


def _summary_shape(v: Any) -> Any:
    if v is None:
        _fail("is required")
    if not isinstance(v, dict):
        _fail("must be an object of non-negative integers")
    return v


class DeploymentMetadata(_Metadata):
    pr_number: Annotated[Any, PlainValidator(_int(1))]
    pr_title: Annotated[Any, PlainValidator(_text(1, 200, strip=True))]
    commit_hash: Annotated[Any, PlainValidator(_commit)]
    test_summary: Annotated[dict[str, Count], BeforeValidator(_summary_shape)] = Field(
        default=None, validate_default=True
    )
    constitutional_compliance: Flag
    summary: Annotated[Any, PlainValidator(_optional(_text(0, 20_000)))] = None


def validate_deployment_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    out = dict(metadata)
    try:
        parsed = DeploymentMetadata.model_validate(out)
    except PydanticValidationError as exc:
        _raise(exc)
    out["pr_number"] = parsed.pr_number
    out["pr_title"] = parsed.pr_title
    out["commit_hash"] = parsed.commit_hash
    out["constitutional_compliance"] = parsed.constitutional_compliance
    if len(parsed.commit_hash) < 40:
        out["commit_hash_abbreviated"] = True
    else:
        out.pop("commit_hash_abbreviated", None)
    return out
