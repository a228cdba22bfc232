"""Ids as users type them: a full id or a unique prefix of at least six characters (SPEC §2.1)."""

from __future__ import annotations

import sqlite3
from typing import Any

from statusd.errors import NotFoundError, ValidationError
from statusd.models import check_id_text


def one_by_prefix(
    conn: sqlite3.Connection,
    query: str,
    text: str,
    *,
    entity: str,
    field: str = "id",
    name_field: bool = True,
) -> tuple[Any, ...]:
    """The single row ``query`` finds for the id or id prefix ``text``.

    ``query`` takes the prefix range as its two parameters (``id >= ? AND id < ?``) and should stop
    at two rows (``LIMIT 2``). No row is ``not_found`` (naming ``field`` when ``name_field``); two
    are a ``validation_error`` asking for more characters.
    """
    key = check_id_text(text, field)
    rows = conn.execute(query, (key, key + "\x7f")).fetchall()
    if not rows:
        raise NotFoundError(entity, text, field if name_field else None)
    if len(rows) > 1:
        raise ValidationError.one(field, f"id prefix {text!r} is ambiguous; give more characters")
    return tuple(rows[0])
