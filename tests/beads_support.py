"""A generated beads ``issues.jsonl`` for tests anywhere in the suite (importers, interop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def beads_source(path: Path, n: int, *, prefix: str = "bd", title: str = "issue", tombstone_every: int = 0) -> Path:
    """``n`` beads records: epics of 20 with dotted children, each child from the third on "blocked
    by" the one before; with ``tombstone_every`` k, every k-th record is a tombstone instead."""
    lines = []
    for i in range(n):
        epic = i - i % 20
        ident = f"{prefix}-{i}" if i % 20 == 0 else f"{prefix}-{epic}.{i % 20}"
        rec: dict[str, Any] = {"id": ident, "title": f"{title} {i}", "status": "open", "priority": i % 5}
        if tombstone_every and i % tombstone_every == tombstone_every - 1:
            rec["status"] = "tombstone"
        elif i % 20 > 1:
            prev = f"{prefix}-{epic}.{i % 20 - 1}"
            rec["dependencies"] = [{"issue_id": ident, "depends_on_id": prev, "type": "blocks"}]
        lines.append(json.dumps(rec))
    path.mkdir(parents=True, exist_ok=True)
    (path / "issues.jsonl").write_text("\n".join(lines) + "\n")
    return path / "issues.jsonl"
