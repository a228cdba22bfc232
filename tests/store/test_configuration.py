"""Project configuration (SPEC §2.6): created on first use, versioned updates, session link."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from store_support import FakeClock, create_item, ctx, update_item

from statusd import models as m
from statusd.errors import NotFoundError, ValidationError, VersionMismatchError
from statusd.store import Store, WriteContext, configuration, report


def config(store: Store) -> dict[str, Any]:
    return store.read(configuration.get)


async def update(store: Store, actor: str = "tester", **kw: Any) -> dict[str, Any]:
    kw.setdefault("version", config(store)["version"])
    return await store.write(configuration.update, ctx(actor), m.parse_args(m.UpdateConfigurationArgs, kw))


async def test_created_with_defaults_on_first_open(store: Store) -> None:
    c = config(store)
    assert c["active_context_type"] == "feature"
    assert c["default_token_budget"] == 200_000
    assert (c["current_session_id"], c["git_branch"], c["git_head_commit"]) == (None, None, None)
    assert c["version"] == 1
    assert c["created_by"] == "statusd"
    assert store.reader.execute("SELECT COUNT(*) FROM configuration").fetchone()[0] == 1


async def test_the_id_is_derived_from_the_project_name(tmp_path: Path) -> None:
    """Regression: Store.open ignored ``project`` and always derived the id from "default"."""
    ids = []
    for i, project in enumerate(["alpha", "alpha", "beta"]):
        async with Store(tmp_path / f"s{i}.sqlite3", project=project) as s:
            ids.append(config(s)["id"])
    assert ids[0] == ids[1] != ids[2]
    assert ids[0] == str(uuid.uuid5(configuration._NAMESPACE, "alpha"))


async def test_reopening_keeps_the_one_configuration(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with Store(path) as s:
        await update(s, git_branch="main")
        first = config(s)
    async with Store(path) as s:
        assert config(s) == first
        assert s.reader.execute("SELECT COUNT(*) FROM configuration").fetchone()[0] == 1


async def test_update_with_version(cstore: Store, clock: FakeClock) -> None:
    clock.advance(hours=1)
    updated = await update(
        cstore, actor="alice", active_context_type="research", git_branch="feature/x",
        git_head_commit="ABCDEF0", default_token_budget=1_000,
    )  # fmt: skip
    assert updated["version"] == 2
    assert (updated["updated_by"], updated["updated_at"]) == ("alice", clock())
    assert config(cstore)["git_head_commit"] == "abcdef0"
    assert config(cstore)["default_token_budget"] == 1_000
    assert config(cstore)["active_context_type"] == "research"
    cleared = await update(cstore, git_branch=None, git_head_commit=None)
    assert (cleared["git_branch"], cleared["git_head_commit"], cleared["version"]) == (None, None, 3)
    same = await update(cstore, active_context_type="research")
    assert same["version"] == 3


async def test_stale_version_is_rejected(store: Store) -> None:
    await update(store, actor="alice", git_branch="a")
    with pytest.raises(VersionMismatchError) as exc:
        await update(store, actor="bob", version=1, git_branch="b")
    assert (exc.value.expected_version, exc.value.actual_version, exc.value.last_updated_by) == (1, 2, "alice")
    assert config(store)["git_branch"] == "a"


@pytest.mark.parametrize("budget", [999, 1_000_001, 0])
async def test_token_budget_bounds(store: Store, budget: int) -> None:
    with pytest.raises(ValidationError) as exc:
        await update(store, default_token_budget=budget)
    assert exc.value.fields[0]["field"] == "default_token_budget"


@pytest.mark.parametrize("budget", [1_000, 1_000_000])
async def test_token_budget_limits_are_inclusive(store: Store, budget: int) -> None:
    assert (await update(store, default_token_budget=budget))["default_token_budget"] == budget


@pytest.mark.parametrize("field", ["active_context_type", "default_token_budget"])
async def test_required_fields_cannot_be_null(store: Store, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await update(store, **{field: None})
    assert exc.value.fields[0]["field"] == field


async def test_bad_context_type_and_commit(store: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        await update(store, active_context_type="holiday")
    assert exc.value.fields[0]["field"] == "active_context_type"
    with pytest.raises(ValidationError) as exc:
        await update(store, git_head_commit="xyz")
    assert exc.value.fields[0]["field"] == "git_head_commit"


async def test_current_session_must_be_a_live_session(cstore: Store, clock: FakeClock) -> None:
    session = await create_item(cstore, item_type="session")
    updated = await update(cstore, current_session_id=session["id"][:8])
    assert updated["current_session_id"] == session["id"]
    cleared = await update(cstore, current_session_id=None)
    assert cleared["current_session_id"] is None

    task = await create_item(cstore, item_type="task")
    with pytest.raises(ValidationError) as exc:
        await update(cstore, current_session_id=task["id"])
    assert exc.value.fields[0]["field"] == "current_session_id"

    with pytest.raises(NotFoundError) as nf:
        await update(cstore, current_session_id="ffffffff")
    assert nf.value.details["field"] == "current_session_id"

    gone = await create_item(cstore, item_type="session")
    await update_item(cstore, gone["id"], deleted=True)
    with pytest.raises(ValidationError) as exc:
        await update(cstore, current_session_id=gone["id"])
    assert exc.value.fields[0]["field"] == "current_session_id"


async def test_an_archived_session_cannot_become_current(cstore: Store, clock: FakeClock) -> None:
    """Regression: an archived session (out of every default query) was accepted as the current one."""
    old = await create_item(cstore, item_type="session")
    clock.advance(days=400)
    await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
    with pytest.raises(ValidationError) as exc:
        await update(cstore, current_session_id=old["id"])
    assert exc.value.fields[0]["field"] == "current_session_id"
    assert config(cstore)["current_session_id"] is None
