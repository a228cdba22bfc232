"""Conflict records in the store: metadata keys as fields, refused operations, and their resolution."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from store_support import create_item, ctx

from statusd import models as m
from statusd.errors import ValidationError
from statusd.store import Store, WriteContext, conflicts
from statusd.store.set_aside import retire


def op(item: dict[str, Any], changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    return {
        "op_id": "00000000-0000-4000-8000-000000000001", "entity": "work_item", "entity_id": item["id"],
        "base_version": 0, "changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()},
    }  # fmt: skip


async def keep(store: Store, **record: Any) -> str:
    def run(conn: sqlite3.Connection, c: WriteContext) -> str:
        return conflicts.record(conn, c, **record)

    return await store.write(run, ctx())


async def resolve(store: Store, ident: str, resolution: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    args = m.parse_args(m.ResolveConflictArgs, {"id": ident, "resolution": resolution, "values": values})
    return await store.write(conflicts.resolve, ctx("resolver"), args)


async def test_metadata_keys_are_fields_of_their_own(store: Store) -> None:
    item = await create_item(store, metadata={"blocked_reason": "remote", "estimated_hours": 2, "gone": 1})
    fields = {
        "metadata.blocked_reason": {"base": "old", "local": "local", "remote": "remote"},
        "metadata.gone": {"base": 1, "local": None, "remote": 1},
    }
    first = await keep(store, kind="field", op=op(item, {}), fields=fields, remote_version=1, reason=None)
    with pytest.raises(ValidationError):  # only disputed keys may be given
        await resolve(store, first, "custom", {"metadata.estimated_hours": 9})
    done = await resolve(store, first, "custom", {"metadata.blocked_reason": "agreed", "metadata.gone": None})
    assert done["item"]["metadata"] == {"blocked_reason": "agreed", "estimated_hours": 2}
    second = await keep(store, kind="field", op=op(item, {}), fields=fields, remote_version=2, reason=None)
    kept = await resolve(store, second, "keep_local")
    assert kept["item"]["metadata"] == {"blocked_reason": "local", "estimated_hours": 2}


async def test_a_refused_create_is_retried_or_discarded(store: Store) -> None:
    item = await create_item(store, title="refused")

    def hide(conn: sqlite3.Connection, c: WriteContext) -> None:
        retire(conn, c, "work_item", item["id"])

    await store.write(hide, ctx())
    fields = {"title": {"base": None, "local": "refused", "remote": None}}
    record = dict(kind="rejected", op=op(item, {"title": (None, "refused")}), fields=fields, remote_version=None,
                  reason="refused by the hub: no")  # fmt: skip
    discarded = await resolve(store, await keep(store, **record), "discard")
    assert discarded["item"]["deleted_at"] is not None  # still hidden: nothing was sent again
    retried = await resolve(store, await keep(store, **record), "custom", {"title": "fixed"})
    assert retried["item"]["deleted_at"] is None and retried["item"]["title"] == "fixed"
    listed = store.read(conflicts.list_conflicts, m.ListConflictsArgs(include_resolved=True))
    assert [c["resolution"] for c in listed["conflicts"]] == ["discard", "custom"]
    assert all(c["reason"] == "refused by the hub: no" for c in listed["conflicts"])
