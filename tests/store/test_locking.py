"""Optimistic locking (SPEC §2, §4.2): every mutable entity rejects a stale version."""

from __future__ import annotations

import pytest
from store_support import (
    create_enhancement,
    create_item,
    create_vendor,
    ctx,
    get_item,
    update_enhancement,
    update_item,
    update_vendor,
)

from statusd import models as m
from statusd.errors import VersionMismatchError
from statusd.store import Store, configuration


async def test_work_item(store: Store) -> None:
    item = await create_item(store)
    await update_item(store, item["id"], actor="alice", version=1, title="alice's")
    for change in ({"title": "bob's"}, {"title": "alice's"}, {"deleted": True}, {"parent_id": None}):
        with pytest.raises(VersionMismatchError) as exc:
            await update_item(store, item["id"], actor="bob", version=1, **change)
        err = exc.value
        assert (err.expected_version, err.actual_version, err.last_updated_by) == (1, 2, "alice")
        assert err.code == "version_mismatch"
        assert "version mismatch" in err.message
        assert err.details["expected_version"] == 1
        assert err.details["actual_version"] == 2
        assert err.details["last_updated_by"] == "alice"
    row = get_item(store, item["id"])
    assert (row["title"], row["version"], row["deleted_at"]) == ("alice's", 2, None)


async def test_a_future_version_is_also_a_mismatch(store: Store) -> None:
    item = await create_item(store)
    with pytest.raises(VersionMismatchError) as exc:
        await update_item(store, item["id"], version=5, title="x")
    assert (exc.value.expected_version, exc.value.actual_version) == (5, 1)


async def test_vendor(store: Store) -> None:
    await create_vendor(store, "Acme", actor="alice")
    with pytest.raises(VersionMismatchError) as exc:
        await update_vendor(store, "Acme", 2, actor="bob", status="operational")
    assert (exc.value.expected_version, exc.value.actual_version, exc.value.last_updated_by) == (2, 1, "alice")


async def test_enhancement(store: Store) -> None:
    enh = await create_enhancement(store, actor="alice")
    await update_enhancement(store, enh["id"], 1, actor="carol", priority="high")
    with pytest.raises(VersionMismatchError) as exc:
        await update_enhancement(store, enh["id"], 1, actor="bob", priority="low")
    assert (exc.value.expected_version, exc.value.actual_version, exc.value.last_updated_by) == (1, 2, "carol")


async def test_configuration(store: Store) -> None:
    args = m.parse_args(m.UpdateConfigurationArgs, {"version": 1, "git_branch": "main"})
    await store.write(configuration.update, ctx("alice"), args)
    with pytest.raises(VersionMismatchError) as exc:
        await store.write(configuration.update, ctx("bob"), args)
    assert (exc.value.expected_version, exc.value.actual_version, exc.value.last_updated_by) == (1, 2, "alice")
    assert store.read(configuration.get)["version"] == 2
