"""Helpers for tests that call the hub's SQL functions directly."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg


def op(
    entity_id: str,
    changes: dict[str, tuple[Any, Any]],
    *,
    base: int,
    entity: str = "work_item",
    op_id: str | None = None,
    machine: str = "m1",
) -> dict[str, Any]:
    return {
        "op_id": op_id or str(uuid.uuid4()),
        "entity": entity,
        "entity_id": entity_id,
        "base_version": base,
        "changes": {k: {"old": old, "new": new} for k, (old, new) in changes.items()},
        "at": "2026-01-01T00:00:00Z",
        "actor": "tester",
        "machine": machine,
        "via": "tool",
    }


def create_op(entity_id: str, entity: str = "work_item", **fields: Any) -> dict[str, Any]:
    return op(entity_id, {k: (None, v) for k, v in fields.items()}, base=0, entity=entity)


async def apply(conn: asyncpg.Connection, schema: str, o: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
    raw = await conn.fetchval(f"SELECT {schema}.apply_op($1::jsonb, $2)::text", json.dumps(o), strict)
    result: dict[str, Any] = json.loads(raw)
    return result


async def entity_row(conn: asyncpg.Connection, schema: str, ident: str) -> tuple[int, dict[str, Any]]:
    row = await conn.fetchrow(f"SELECT version, data::text FROM {schema}.entities WHERE id = $1", ident)
    assert row is not None
    return row[0], json.loads(row[1])
