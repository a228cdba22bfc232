"""Rows handed to SQLite as one JSON array and unpacked there (``json_each``): one call per batch.

Every call into SQLite lets the event loop take the GIL, and the writer thread then waits to get
it back; a batch packed this way costs one call however many rows it holds (docs/decisions.md
2026-12-01).
"""

from __future__ import annotations

import json
from typing import Any


def packed(rows: Any) -> str:
    """``rows`` as JSON text for a ``json_each(?)`` parameter.

    Text stays UTF-8 (not ``\\u`` escapes), so a lone surrogate fails to bind exactly as it would
    as a plain parameter instead of reaching the store; a non-finite number fails here rather than
    as malformed JSON inside SQLite.
    """
    return json.dumps(rows, ensure_ascii=False, allow_nan=False)
