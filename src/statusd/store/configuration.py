"""The project configuration singleton (SPEC §2.6), created with defaults on first use.

Its id is derived from the project name, so two machines that each create it on first use create
the same entity rather than two competing ones.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from statusd.errors import ValidationError
from statusd.models import DEFAULT_TOKEN_BUDGET, UpdateConfigurationArgs, normalize_commit_hash
from statusd.store import entities as ent
from statusd.store.context import WriteContext
from statusd.store.entities import CONFIGURATION, WORK_ITEM

_NAMESPACE = uuid.UUID("0b6f3f4e-7d0a-4f58-8a51-3c2d1e0f9a87")


def _row(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute(f"{CONFIGURATION.select} ORDER BY created_at LIMIT 1").fetchone()
    return None if row is None else ent.decode(CONFIGURATION, row)


def ensure(conn: sqlite3.Connection, ctx: WriteContext, project: str = "default") -> dict[str, Any]:
    current = _row(conn)
    if current is not None:
        return current
    values = {"active_context_type": "feature", "default_token_budget": DEFAULT_TOKEN_BUDGET}
    return ent.insert(conn, ctx, CONFIGURATION, values, str(uuid.uuid5(_NAMESPACE, project)))


def get(conn: sqlite3.Connection) -> dict[str, Any]:
    current = _row(conn)
    if current is None:  # only before the store has been opened once
        raise RuntimeError("configuration missing; the store was not opened through Store.open()")
    return current


def token_budget(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT default_token_budget FROM configuration LIMIT 1").fetchone()
    return int(row[0]) if row else DEFAULT_TOKEN_BUDGET


def update(conn: sqlite3.Connection, ctx: WriteContext, args: UpdateConfigurationArgs) -> dict[str, Any]:
    current = get(conn)
    given = args.model_fields_set - {"actor", "version"}
    ent.refuse_nulls(args, ("active_context_type", "default_token_budget"))
    ent.check_version(CONFIGURATION, current, args.version)
    new: dict[str, Any] = {
        f: getattr(args, f) for f in ("active_context_type", "git_branch", "default_token_budget") if f in given
    }
    if "git_head_commit" in given:
        c = args.git_head_commit
        new["git_head_commit"] = normalize_commit_hash(c, "git_head_commit") if c else None
    if "current_session_id" in given:
        new["current_session_id"] = None
        if args.current_session_id is not None:
            item = ent.load(conn, WORK_ITEM, args.current_session_id, "current_session_id")
            if item["item_type"] != "session" or item["deleted_at"] or item["archived_at"]:
                raise ValidationError.one("current_session_id", "must be a live session work item")
            new["current_session_id"] = item["id"]
    return ent.update(conn, ctx, CONFIGURATION, current, new)
