"""Input limits checked once at the tool boundary, and standard JSON for every answer (SPEC §4.2).

Nothing the store, Postgres or a JSON parser elsewhere cannot hold may be accepted: a NUL
character or a lone surrogate in any string, a non-finite number (a raw ``1e999`` parses to
infinity, ``NaN`` to NaN), or a metadata object over ``MAX_METADATA_BYTES``. Postgres refuses the
first two, so one such value would otherwise be accepted locally and then stop replication.

Standard library only: the daemon's fast path calls it on every tool call.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from statusd.errors import ValidationError

log = logging.getLogger(__name__)

# A metadata object serialises (compact JSON, UTF-8) to at most this many bytes.
MAX_METADATA_BYTES = 64 * 1024
# The longest request line the daemon reads. The largest valid request (64 KiB of metadata, a
# 20,000-character description, 1,000 linked ids) is well under 1 MiB even with every character
# escaped as \uXXXX; a longer line is answered with a JSON-RPC error and skipped.
MAX_REQUEST_BYTES = 1024 * 1024
# Report at most this many bad fields: a hostile request may hold millions.
_MAX_REPORTED = 20
_MAX_KEY_SHOWN = 80

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def check_arguments(arguments: dict[str, Any]) -> None:
    """Raise ``ValidationError`` naming every bad field (by path) of a tool call's arguments."""
    if _clean(arguments):
        return
    problems: list[dict[str, Any]] = []
    # Iterative walk: arguments nested thousands deep must not raise RecursionError here.
    stack: list[tuple[str, Any]] = [(_key_path("", k), v) for k, v in reversed(arguments.items())]
    for key in arguments:
        _check_text(key, _printable(key), problems, is_key=True)
    while stack and len(problems) < _MAX_REPORTED:
        path, value = stack.pop()
        if isinstance(value, str):
            _check_text(value, path, problems)
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append({"field": path, "message": "must be a finite number (no NaN or Infinity)"})
        elif isinstance(value, dict):
            if path.rpartition(".")[2] == "metadata":
                _check_size(value, path, problems)
            for key, child in reversed(value.items()):
                child_path = _key_path(path, key)
                _check_text(key, child_path, problems, is_key=True)
                stack.append((child_path, child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(value))))
    if problems:
        raise ValidationError(problems[:_MAX_REPORTED])


def _clean(arguments: dict[str, Any]) -> bool:
    """The common case, fast (every tool call pays it): nothing to report, so no paths to build."""
    stack: list[Any] = [arguments]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if not _clean_text(key):
                    return False
                if key == "metadata" and isinstance(child, dict) and not _small(child):
                    return False
                if isinstance(child, str):
                    if not _clean_text(child):
                        return False
                elif isinstance(child, float):
                    if not math.isfinite(child):
                        return False
                elif isinstance(child, dict | list):
                    stack.append(child)
        elif isinstance(value, list):
            for child in value:
                if isinstance(child, str):
                    if not _clean_text(child):
                        return False
                elif isinstance(child, float):
                    if not math.isfinite(child):
                        return False
                elif isinstance(child, dict | list):
                    stack.append(child)
    return True


def _clean_text(text: str) -> bool:
    return (text.isascii() and "\x00" not in text) or _BAD_CHAR.search(text) is None


def _small(metadata: dict[str, Any]) -> bool:
    problems: list[dict[str, Any]] = []
    _check_size(metadata, "metadata", problems)
    return not problems


def check_metadata_size(value: Any, field: str = "metadata", *, encoded: str | None = None) -> None:
    """Raise ``ValidationError`` when a (merged) metadata object serialises past the limit.
    ``encoded``: the value already as compact JSON (key order does not change the size)."""
    problems: list[dict[str, Any]] = []
    _check_size(value, field, problems, encoded)
    if problems:
        raise ValidationError(problems)


def _check_text(text: str, path: str, problems: list[dict[str, Any]], *, is_key: bool = False) -> None:
    if text.isascii() and "\x00" not in text:
        return
    found = _BAD_CHAR.search(text)
    if found is None:
        return
    what = "NUL character (U+0000)" if found.group() == "\x00" else "lone surrogate"
    where = "key" if is_key else "string"
    problems.append({"field": path, "message": f"{where} contains a {what}; it cannot be stored or replicated"})


def _check_size(value: Any, path: str, problems: list[dict[str, Any]], text: str | None = None) -> None:
    try:
        if text is None:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        encoded = text.encode("utf-8", "surrogatepass")
    except (RecursionError, ValueError, TypeError):
        return  # too deep, non-finite or odd values: the walk and the argument model report those
    if len(encoded) > MAX_METADATA_BYTES:
        problems.append(
            {
                "field": path,
                "message": f"metadata serialises to {len(encoded)} bytes; the limit is {MAX_METADATA_BYTES}",
                "limit": MAX_METADATA_BYTES,
                "size": len(encoded),
            }
        )


def _key_path(parent: str, key: str) -> str:
    key = _printable(key)
    return f"{parent}.{key}" if parent else key


def _printable(text: str) -> str:
    """A key as it can appear in an error: NULs and lone surrogates shown as escapes, shortened."""
    if len(text) > _MAX_KEY_SHOWN:
        text = text[:_MAX_KEY_SHOWN] + "…"
    if text.isascii() and "\x00" not in text:
        return text
    return _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# --- answers ----------------------------------------------------------------------------------


def dumps_answer(payload: Any) -> str:
    """Compact standard JSON of ``finite_answer(payload)``."""
    return compact_json(finite_answer(payload)[1])


def finite_answer(payload: Any) -> tuple[str, Any]:
    """Return ``(json_text, payload)`` in standard JSON.

    A non-finite number already stored (from before these limits) becomes ``null`` in both, as
    JSON.stringify does, instead of the non-standard ``Infinity``/``NaN``; the common case costs
    one ``json.dumps``.
    """
    try:
        return compact_json(payload), payload
    except ValueError:
        log.warning("an answer held a non-finite number; sent it as null")
        payload = _finite(payload)
        return compact_json(payload), payload


def compact_json(value: Any) -> str:
    """The wire's JSON text: compact, UTF-8 as is, standard (no NaN/Infinity; raises instead)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
