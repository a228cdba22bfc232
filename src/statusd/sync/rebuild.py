"""Rebuild a lost store (SPEC §6, R8): Postgres, else the markdown as committed in git, else the file.

The daemon calls ``needs_rebuild`` before opening the store and ``rebuild_from_markdown`` after (a
standalone daemon, or no Postgres configured). A replicated daemon rebuilds from Postgres through
the replicator's ordinary bootstrap of an empty store; until that has happened results carry
``data_source: "postgres"`` and a warning, and the mirror leaves the file alone (importing it would
create every entity a second time beside the ones the bootstrap brings).

A markdown rebuild cannot recover ids (the file shows 8-character prefixes) or history: the
warning says so, and stays for the daemon's lifetime. Nothing here ever raises into start-up: a
source that cannot be read is skipped, and with no source the store starts empty, with a warning.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from statusd.models import now_iso
from statusd.store import Store
from statusd.sync.legacy_import import LegacyPlan, read_source
from statusd.sync.migration import run_import

log = logging.getLogger(__name__)


@dataclass
class Rebuild:
    """What start-up found: why the store is new, and where its data came from."""

    reason: str  # "missing" | "corrupt"
    source: str | None = None  # postgres | git_history | markdown_file | None (nothing found)
    warning: str | None = None
    entities: int = 0


def needs_rebuild(store_path: Path, mirror_path: Path | None, replicated: bool) -> str | None:
    """Before ``Store.open``: "missing" when the store is gone but the project clearly had one."""
    if store_path.exists():
        return None
    had_mirror = mirror_path is not None and mirror_path.exists() and _ours(mirror_path.read_bytes())
    return "missing" if had_mirror or (mirror_path is not None and git_head(mirror_path) is not None) else None


def _ours(data: bytes) -> bool:
    from statusd.sync.markdown_model import MARKER

    return data.removeprefix(b"\xef\xbb\xbf").startswith(MARKER.encode())  # a BOM from a Windows editor


def git_head(path: Path) -> bytes | None:
    """The file as last committed (``git show HEAD:<path>``), or None outside git / never committed."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 and proc.stdout else None


async def rebuild_from_markdown(store: Store, mirror_path: Path, reason: str) -> Rebuild:
    """Fill an empty store from the git-committed markdown, else the working copy."""
    head, work = git_head(mirror_path), _read(mirror_path)
    candidates = [("git_history", head), ("markdown_file", work)]
    if head is not None and work is not None and work.strip() and work != head:
        # The daemon rewrites the working copy on every change, so one that differs from the last
        # commit is newer than it: rebuilding from git would drop what only the working copy holds
        # and the next render would overwrite it. It goes first; git is the fallback if it fails.
        candidates.reverse()
    for source, data in candidates:
        if data is None:
            continue
        try:
            plan = LegacyPlan(read_source(data.decode("utf-8")), f"{source}:{mirror_path}")
            result = await run_import(store, plan, actor="statusd-rebuild")
        except Exception as exc:  # a damaged source is skipped, never a crash loop
            log.warning("rebuild: %s of %s unusable (%s); trying the next source", source, mirror_path, exc)
            continue
        if result.get("success"):
            entities = int(result.get("created", 0))
            warning = (
                f"store_rebuilt: the store was {reason}; rebuilt from {source} at {now_iso()} "
                f"({entities} entities). Ids and history from before were not recoverable"
            )
            log.warning(warning)
            return Rebuild(reason, source, warning, entities)
        log.warning("rebuild: %s of %s did not import cleanly: %s", source, mirror_path, result.get("errors"))
    warning = f"store_rebuilt: the store was {reason} and no source to rebuild it from could be read; started empty"
    log.warning(warning)
    return Rebuild(reason, None, warning)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
