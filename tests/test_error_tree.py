"""The error tree (statusd.errors): one root for every exception, and the tool-error body both ways."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import statusd
from statusd.errors import (
    ERROR_CLASSES,
    CycleDetectedError,
    DaemonNotRunningError,
    DepthLimitError,
    DuplicateError,
    NotFoundError,
    StatusdError,
    UnavailableError,
    ValidationError,
    VersionMismatchError,
    from_payload,
)
from statusd.sync.markdown_model import MarkdownParseError
from statusd.sync.pg_schema import SchemaTooNewError


def package_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a statusd module."""
    found = []
    for info in pkgutil.walk_packages(statusd.__path__, "statusd."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def outside_the_tree() -> list[str]:
    return [f"{e.__module__}.{e.__qualname__}" for e in package_exceptions() if not issubclass(e, StatusdError)]


def test_every_exception_of_the_package_is_a_statusd_error() -> None:
    assert {SchemaTooNewError, DaemonNotRunningError, ValidationError} <= set(package_exceptions())
    assert outside_the_tree() == []


def test_a_markdown_parse_error_keeps_its_line_and_reason_and_reads_as_before() -> None:
    exc = MarkdownParseError(7, "a work item needs a title")
    assert isinstance(exc, StatusdError) and exc.code == "validation_error"
    assert str(exc) == exc.message == "line 7: a work item needs a title"
    assert (exc.line, exc.reason) == (7, "a work item needs a title")
    assert exc.details == {"line": 7, "reason": "a work item needs a title"}


def test_schema_too_new_and_daemon_not_running_carry_codes_and_details() -> None:
    too_new = SchemaTooNewError(5, 3)
    assert too_new.code == "internal" and too_new.details == {"found": 5, "known": 3}
    assert "version 5" in too_new.message and "paused" in too_new.message
    missing = DaemonNotRunningError("/run/x.sock", "No such file or directory")
    assert missing.code == "unavailable"
    assert missing.details == {"path": "/run/x.sock", "reason": "No such file or directory"}
    assert "statusd run" in missing.message


ROUND_TRIPS: list[StatusdError] = [
    ValidationError([{"field": "title", "message": "must not be empty"}]),
    NotFoundError("work_item", "abc123", field="parent_id"),
    VersionMismatchError("work_item", "abc123", 1, 3, "claude-code"),
    DepthLimitError(5, 4),
    CycleDetectedError("would close a cycle", path=["a", "b", "a"]),
    DuplicateError("vendor", "name", "acme"),
    UnavailableError("the disk is full", {"reason": "disk_full"}),
    StatusdError("internal error", {"tool": "x"}),
]


@pytest.mark.parametrize("original", ROUND_TRIPS, ids=lambda e: type(e).__name__)
def test_from_payload_rebuilds_the_same_typed_error(original: StatusdError) -> None:
    rebuilt = from_payload(original.to_payload())
    assert type(rebuilt) is type(original)
    assert (rebuilt.code, rebuilt.message, rebuilt.details) == (original.code, original.message, original.details)
    if isinstance(original, VersionMismatchError):
        assert isinstance(rebuilt, VersionMismatchError)
        assert (rebuilt.expected_version, rebuilt.actual_version, rebuilt.last_updated_by) == (1, 3, "claude-code")
    if isinstance(original, ValidationError):
        assert isinstance(rebuilt, ValidationError)
        assert rebuilt.fields == original.fields
    if isinstance(original, NotFoundError):
        assert isinstance(rebuilt, NotFoundError)
        assert (rebuilt.entity, rebuilt.ident) == ("work_item", "abc123")
    if isinstance(original, DepthLimitError):
        assert isinstance(rebuilt, DepthLimitError)
        assert (rebuilt.depth, rebuilt.max_depth) == (5, 4)


def test_from_payload_accepts_a_bare_body_and_unknown_codes() -> None:
    bare = from_payload({"code": "not_found", "message": "gone", "details": {"entity": "vendor", "id": "v"}})
    assert isinstance(bare, NotFoundError) and bare.ident == "v"
    future = from_payload({"error": {"code": "rate_limited", "message": "slow down", "details": {}}})
    assert type(future) is StatusdError and future.message == "slow down"
    empty = from_payload({})
    assert type(empty) is StatusdError and empty.code == "internal" and empty.details == {}


def test_every_wire_code_has_one_class() -> None:
    assert set(ERROR_CLASSES) == {
        "internal",
        "validation_error",
        "not_found",
        "version_mismatch",
        "depth_limit",
        "cycle_detected",
        "duplicate",
        "unavailable",
    }
