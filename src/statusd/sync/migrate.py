"""Migrate a status file into the store (SPEC §8): read it, run the import engine, keep a backup.

``migrate_path`` is what the ``migrate_legacy_markdown`` tool, ``statusd migrate`` and the mirror's
first start (a status file statusd did not write) all call. On success (not a dry run) the file is
copied to ``PATH.backup`` inside the import's transaction, and when ``PATH`` is the mirror's file,
the mirror takes it over with the migrated layout: every line that did not become an entity is
re-emitted in its original order. On failure nothing is imported and the file is left as it was.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statusd.errors import ValidationError
from statusd.store import Store
from statusd.sync.legacy_import import LegacyPlan, read_prompts_dir, read_source
from statusd.sync.markdown_model import MarkdownParseError
from statusd.sync.migration import Progress, run_import, run_import_sync

if TYPE_CHECKING:
    from statusd.sync.mirror import Mirror

FAIL_ENV = "STATUSD_MIGRATION_FAIL"  # names a reconciliation check to fail (tests, as seed scenario 5)


def _read(path: Path) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValidationError.one("path", f"no such file: {path}") from None
    except OSError as exc:
        raise ValidationError.one("path", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:  # e.g. an embedded NUL
        raise ValidationError.one("path", f"not a usable path: {exc}") from None
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError.one("path", f"{path} is not UTF-8 text") from None


def _backup_path(path: Path, data: bytes) -> Path:
    """``PATH.backup``, unless one with other content is there: then ``PATH.backup.N`` (never overwrite)."""
    candidate = path.with_name(path.name + ".backup")
    n = 1
    while candidate.exists() and candidate.read_bytes() != data:
        candidate = path.with_name(f"{path.name}.backup.{n}")
        n += 1
    return candidate


def _plan(path: Path, prompts_dir: Path | None = None) -> tuple[Path, bytes, LegacyPlan]:
    path = path.expanduser().absolute()
    data, text = _read(path)
    try:
        source = read_source(text)
    except MarkdownParseError as exc:
        raise ValidationError.one("path", f"{path}: line {exc.line}: {exc.reason}") from None
    if prompts_dir is not None:
        try:
            read_prompts_dir(prompts_dir.expanduser().absolute(), source)
        except MarkdownParseError as exc:
            raise ValidationError.one("prompts_dir", exc.reason) from None
    return path, data, LegacyPlan(source, str(path))


def _on_commit(path: Path, data: bytes, result: dict[str, Any]) -> Any:
    def write_backup() -> None:
        backup = _backup_path(path, data)
        if not backup.exists():
            tmp = backup.with_name(backup.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, backup)
        result["backup"] = str(backup)

    return write_backup


async def migrate_path(
    store: Store,
    path: Path,
    *,
    dry_run: bool = False,
    fail: str | None = None,
    progress: Progress | None = None,
    mirror: Mirror | None = None,
    actor: str = "statusd-migrate",
    prompts_dir: Path | None = None,
) -> dict[str, Any]:
    path, data, plan = await asyncio.to_thread(_plan, path, prompts_dir)
    extra: dict[str, Any] = {}
    fail = fail if fail is not None else os.environ.get(FAIL_ENV) or None
    result = await run_import(
        store, plan, actor=actor, dry_run=dry_run, fail=fail, progress=progress, on_commit=_on_commit(path, data, extra)
    )
    result.update(extra)
    if result["success"] and not dry_run and mirror is not None and mirror.path == path:
        await mirror.adopt(plan.source.layout, data)
        result["mirror"] = "took over the file; lines that did not become entities are kept in their order"
    return result


def migrate_path_sync(
    store: Store,
    path: Path,
    *,
    mirror_path: Path | None,
    dry_run: bool = False,
    fail: str | None = None,
    progress: Progress | None = None,
    actor: str = "statusd-migrate",
) -> dict[str, Any]:
    """``migrate_path`` for the CLI with no daemon running: it rewrites the mirror file itself."""
    from statusd.sync.atomic_write import write_atomically
    from statusd.sync.markdown_render import render
    from statusd.sync.mirror_state import snapshot

    path, data, plan = _plan(path)
    extra: dict[str, Any] = {}
    fail = fail if fail is not None else os.environ.get(FAIL_ENV) or None
    result = run_import_sync(
        store, plan, actor=actor, dry_run=dry_run, fail=fail, progress=progress, on_commit=_on_commit(path, data, extra)
    )
    result.update(extra)
    if result["success"] and not dry_run and mirror_path is not None and mirror_path.absolute() == path:
        rendered = store.read(snapshot)
        write_atomically(path, render(rendered.state, plan.source.layout).encode("utf-8"))
        result["mirror"] = "rewrote the file as the mirror; lines that did not become entities are kept in their order"
    return result


async def migrate_tool(
    store: Store,
    mirror: Mirror | None,
    path_text: str,
    dry_run: bool,
    prompts_dir: str | None,
    actor: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The ``migrate_legacy_markdown`` tool: a relative path is taken from the project directory."""
    path = Path(path_text)
    if not path.is_absolute() and mirror is not None:
        path = mirror.path.parent / path
    prompts = None
    if prompts_dir is not None:
        prompts = Path(prompts_dir)
        if not prompts.is_absolute() and mirror is not None:
            prompts = mirror.path.parent / prompts
    return await migrate_path(
        store, path, dry_run=dry_run, mirror=mirror, actor=actor, prompts_dir=prompts, progress=progress
    )
