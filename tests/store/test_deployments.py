"""Deployments (SPEC §2.4): immutable events, metadata rules, links, listing."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import FakeClock, create_item, create_vendor, ctx, deployment_metadata, get_item, update_item

from statusd import models as m
from statusd.errors import NotFoundError, ValidationError
from statusd.store import Store, WriteContext, deployments, report


async def record(store: Store, **kw: Any) -> dict[str, Any]:
    kw.setdefault("metadata", deployment_metadata())
    return await store.write(deployments.record, ctx(), m.parse_args(m.RecordDeploymentArgs, kw))


def query(store: Store, ident: str) -> dict[str, Any]:
    return store.read(deployments.query, m.parse_args(m.QueryDeploymentArgs, {"id": ident}))


def listed(store: Store, **kw: Any) -> list[dict[str, Any]]:
    return store.read(deployments.list_recent, m.parse_args(m.ListDeploymentsArgs, kw))["deployments"]


async def test_record_stores_metadata_and_defaults_the_timestamp_to_now(cstore: Store, clock: FakeClock) -> None:
    dep = await record(cstore, metadata=deployment_metadata(summary="notes", extra_key=[1]))
    assert dep["timestamp"] == clock()
    assert dep["version"] == 1
    stored = query(cstore, dep["id"][:8])
    assert stored["metadata"] == deployment_metadata(summary="notes", extra_key=[1])
    assert stored["affected_vendors"] == []
    assert stored["related_work_items"] == []


async def test_explicit_timestamp_is_normalised_to_utc(store: Store) -> None:
    dep = await record(store, timestamp="2026-01-02T03:04:05+02:00")
    assert dep["timestamp"] == "2026-01-02T01:04:05.000000Z"
    with pytest.raises(ValidationError) as exc:
        await record(store, timestamp="yesterday")
    assert exc.value.fields[0]["field"] == "timestamp"


@pytest.mark.parametrize("length", [7, 20, 39])
async def test_abbreviated_commit_hash_is_accepted_and_flagged(store: Store, length: int) -> None:
    commit = ("ABCDEF0123456789" * 3)[:length]
    dep = await record(store, metadata=deployment_metadata(commit_hash=commit))
    assert dep["metadata"]["commit_hash"] == commit.lower()
    assert dep["metadata"]["commit_hash_abbreviated"] is True
    assert query(store, dep["id"])["metadata"]["commit_hash_abbreviated"] is True


async def test_full_commit_hash_is_lowercased_and_not_flagged(store: Store) -> None:
    dep = await record(store, metadata=deployment_metadata(commit_hash="AB" * 20, commit_hash_abbreviated=True))
    assert dep["metadata"]["commit_hash"] == "ab" * 20
    assert "commit_hash_abbreviated" not in dep["metadata"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pr_number": 0}, "metadata.pr_number"),
        ({"pr_number": "12"}, "metadata.pr_number"),
        ({"pr_title": ""}, "metadata.pr_title"),
        ({"pr_title": "   "}, "metadata.pr_title"),
        ({"pr_title": "t" * 201}, "metadata.pr_title"),
        ({"commit_hash": "abc123"}, "metadata.commit_hash"),
        ({"commit_hash": "g" * 40}, "metadata.commit_hash"),
        ({"commit_hash": "a" * 41}, "metadata.commit_hash"),
        ({"test_summary": {"passed": -1}}, "metadata.test_summary.passed"),
        ({"test_summary": {"passed": 1.5}}, "metadata.test_summary.passed"),
        ({"test_summary": {"passed": True}}, "metadata.test_summary.passed"),
        ({"test_summary": [1, 2]}, "metadata.test_summary"),
        ({"constitutional_compliance": "yes"}, "metadata.constitutional_compliance"),
        ({"summary": 5}, "metadata.summary"),
    ],
)
async def test_metadata_rules(store: Store, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        await record(store, metadata=deployment_metadata(**overrides))
    assert [f["field"] for f in exc.value.fields] == [field]
    assert listed(store) == []


@pytest.mark.parametrize("key", ["pr_number", "pr_title", "commit_hash", "test_summary", "constitutional_compliance"])
async def test_required_metadata_keys(store: Store, key: str) -> None:
    md = deployment_metadata()
    del md[key]
    with pytest.raises(ValidationError) as exc:
        await record(store, metadata=md)
    assert [f["field"] for f in exc.value.fields] == [f"metadata.{key}"]


async def test_pr_title_is_trimmed(store: Store) -> None:
    dep = await record(store, metadata=deployment_metadata(pr_title="  Release  "))
    assert dep["metadata"]["pr_title"] == "Release"


async def test_test_summary_accepts_any_non_negative_counts(store: Store) -> None:
    dep = await record(store, metadata=deployment_metadata(test_summary={"passed": 0, "failed": 3, "flaky": 1}))
    assert dep["metadata"]["test_summary"] == {"passed": 0, "failed": 3, "flaky": 1}


async def test_links_resolve_prefixes_and_are_reported(store: Store) -> None:
    vendor = await create_vendor(store, "Acme", status="operational")
    item = await create_item(store, title="ship it")
    dep = await record(store, vendor_ids=[vendor["id"][:8]], work_item_ids=[item["id"][:10]])
    assert dep["vendor_ids"] == [vendor["id"]]
    assert dep["work_item_ids"] == [item["id"]]
    got = query(store, dep["id"])
    assert got["affected_vendors"] == [
        {"id": vendor["id"], "name": "Acme", "status": "operational", "operational": True}
    ]
    assert got["related_work_items"] == [
        {"id": item["id"], "title": "ship it", "item_type": "task", "status": "active"}
    ]


async def test_links_must_exist(store: Store) -> None:
    vendor = await create_vendor(store, "Acme")
    with pytest.raises(NotFoundError) as exc:
        await record(store, vendor_ids=[vendor["id"], "ffffffff"])
    assert exc.value.details["field"] == "vendor_ids.1"
    with pytest.raises(NotFoundError) as exc:
        await record(store, work_item_ids=[vendor["id"]])  # a vendor id is not a work item
    assert exc.value.details["field"] == "work_item_ids.0"
    assert exc.value.details["entity"] == "work_item"
    assert listed(store) == []


async def test_duplicate_links_are_rejected(store: Store) -> None:
    vendor = await create_vendor(store, "Acme")
    item = await create_item(store)
    with pytest.raises(ValidationError) as exc:
        await record(store, vendor_ids=[vendor["id"], vendor["id"][:8]])
    assert exc.value.fields[0]["field"] == "vendor_ids.1"
    with pytest.raises(ValidationError) as exc:
        await record(store, work_item_ids=[item["id"], item["id"]])
    assert exc.value.fields[0]["field"] == "work_item_ids.1"
    assert listed(store) == []


async def test_links_survive_soft_delete_and_archiving(cstore: Store, clock: FakeClock) -> None:
    item = await create_item(cstore, title="old work")
    dep = await record(cstore, work_item_ids=[item["id"]])
    await update_item(cstore, item["id"], deleted=True)
    assert [w["id"] for w in query(cstore, dep["id"])["related_work_items"]] == [item["id"]]
    clock.advance(days=400)
    await cstore.write(report.archive, WriteContext(actor="archiver"), 365)
    assert get_item(cstore, item["id"])["archived_at"] is not None
    got = query(cstore, dep["id"])
    assert got["work_item_ids"] == [item["id"]]
    assert [w["id"] for w in got["related_work_items"]] == [item["id"]]


async def test_list_is_newest_first_with_since_vendor_and_limit(store: Store) -> None:
    acme = await create_vendor(store, "Acme")
    beta = await create_vendor(store, "Beta")
    d1 = await record(store, timestamp="2026-01-01T00:00:00Z", vendor_ids=[acme["id"]])
    d2 = await record(store, timestamp="2026-02-01T00:00:00Z", vendor_ids=[beta["id"]])
    d3 = await record(store, timestamp="2026-03-01T00:00:00Z", vendor_ids=[acme["id"], beta["id"]])
    assert [d["id"] for d in listed(store)] == [d3["id"], d2["id"], d1["id"]]
    assert [d["id"] for d in listed(store, since="2026-02-01T00:00:00Z")] == [d3["id"], d2["id"]]
    assert [d["id"] for d in listed(store, since="2026-02-01T02:00:00+03:00")] == [d3["id"], d2["id"]]
    assert [d["id"] for d in listed(store, vendor="acme")] == [d3["id"], d1["id"]]
    assert [d["id"] for d in listed(store, vendor="BETA", since="2026-02-15")] == [d3["id"]]
    assert [d["id"] for d in listed(store, limit=1)] == [d3["id"]]
    with pytest.raises(NotFoundError) as exc:
        listed(store, vendor="ghost")
    assert exc.value.details["field"] == "vendor"
    with pytest.raises(ValidationError):
        listed(store, since="last tuesday")


def test_deployments_have_no_update_path() -> None:
    public = {name for name in vars(deployments) if not name.startswith("_") and callable(vars(deployments)[name])}
    assert not {n for n in public if "update" in n or "delete" in n}
    tool_args = {cls.__name__ for cls in m.Args.__subclasses__()}
    assert not {n for n in tool_args if "Deployment" in n and ("Update" in n or "Delete" in n)}
