"""Issue 6 item 2(a), SPEC §4.2 input limits: values nothing downstream can hold are refused at the
tool boundary, naming the field, and every answer is standard JSON.

Before: a NUL character or a raw ``1e999`` (parsed as infinity) was stored, answered as the
non-standard ``Infinity`` and later refused by Postgres, which stopped replication for good.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fuzz_support import RawSession, strict_json
from mcp_support import module_daemon

from daemon_support import DaemonProcess
from statusd.daemon.service import Outcome, Service
from statusd.errors import ValidationError
from statusd.limits import MAX_METADATA_BYTES, check_metadata_size


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    yield from module_daemon(tmp_path_factory)


def tool_call(rid: int, name: str, arguments: str) -> str:
    """A tools/call line with ``arguments`` spliced in as raw JSON text (what a client really sent)."""
    params = f'{{"name":"{name}","arguments":{arguments}}}'
    return f'{{"jsonrpc":"2.0","id":{rid},"method":"tools/call","params":{params}}}'


def tool_error(answer: dict[str, Any] | None) -> dict[str, Any]:
    assert answer is not None and "result" in answer, answer
    result = answer["result"]
    assert result["isError"] is True, result
    text_error = strict_json(result["content"][0]["text"])["error"]
    assert result["structuredContent"]["error"] == text_error
    return dict(text_error)


def bad_fields(outcome: Outcome) -> list[str]:
    assert outcome.is_error, outcome.payload
    error = outcome.payload["error"]
    assert error["code"] == "validation_error", error
    return [f["field"] for f in error["details"]["fields"]]


RAW_CASES = [
    # (arguments as raw JSON text, the fields the validation_error must name)
    ('{"item_type":"task","title":"a\\u0000b"}', ["title"]),
    ('{"item_type":"task","title":"t","metadata":{"x":1e999}}', ["metadata.x"]),
    ('{"item_type":"task","title":"t","metadata":{"l":[1,-1e999]}}', ["metadata.l[1]"]),
    ('{"item_type":"task","title":"t","metadata":{"n":NaN,"i":Infinity}}', ["metadata.n", "metadata.i"]),
    ('{"item_type":"task","title":"t","metadata":{"deep":{"k":["ok","\\u0000"]}}}', ["metadata.deep.k[1]"]),
    ('{"item_type":"task","title":"t","metadata":{"k":"lone \\ud800 surrogate"}}', ["metadata.k"]),
    ('{"item_type":"task","title":"t","metadata":{"\\udfff":1}}', ["metadata.\\udfff"]),
    ('{"item_type":"task","title":"t","metadata":{"a\\u0000b":1}}', ["metadata.a\\u0000b"]),
    ('{"item_type":"task","title":"t","actor":"\\ud83d"}', ["actor"]),
]


@pytest.mark.parametrize(("arguments", "fields"), RAW_CASES)
async def test_raw_hostile_values_are_validation_errors_naming_the_field(
    daemon: DaemonProcess, arguments: str, fields: list[str]
) -> None:
    async with RawSession.connect(daemon.socket_path, 10.0) as raw:
        error = tool_error(await raw.send_line(tool_call(7, "create_work_item", arguments), 7))
        assert error["code"] == "validation_error", error
        assert [f["field"] for f in error["details"]["fields"]] == fields
        listed = await raw.send_line(tool_call(8, "list_work_items", '{"text":"t"}'), 8)
        assert listed is not None and listed["result"]["structuredContent"]["total_count"] == 0


async def test_non_finite_numbers_in_update_and_vendor_calls(daemon: DaemonProcess) -> None:
    async with daemon.client() as c:
        item = await c.call("create_work_item", item_type="task", title="finite only")
        await c.call("create_vendor", name="finite-vendor")
    async with RawSession.connect(daemon.socket_path, 10.0) as raw:
        update = f'{{"id":"{item["id"]}","version":1,"metadata":{{"estimated_hours":1e999}}}}'
        error = tool_error(await raw.send_line(tool_call(1, "update_work_item", update), 1))
        assert [f["field"] for f in error["details"]["fields"]] == ["metadata.estimated_hours"]
        vendor = '{"name":"finite-vendor","version":1,"metadata":{"test_results":{"passing":-1e999}}}'
        error = tool_error(await raw.send_line(tool_call(2, "update_vendor_status", vendor), 2))
        assert [f["field"] for f in error["details"]["fields"]] == ["metadata.test_results.passing"]
    async with daemon.client() as c:
        assert (await c.call("query_work_item", id=item["id"]))["version"] == 1
        assert (await c.call("query_vendor_status", name="finite-vendor"))["version"] == 1


async def test_the_official_client_gets_the_same_answers(daemon: DaemonProcess) -> None:
    async with daemon.client() as c:
        result = await c.session.call_tool("create_work_item", {"item_type": "task", "title": "nul\x00here"})
        assert result.is_error
        error = strict_json(result.content[0].text)["error"]  # type: ignore[union-attr]
        assert error["code"] == "validation_error" and error["details"]["fields"][0]["field"] == "title"
        big = {"blob": "x" * MAX_METADATA_BYTES}
        result = await c.session.call_tool("create_work_item", {"item_type": "task", "title": "big", "metadata": big})
        assert result.is_error
        error = strict_json(result.content[0].text)["error"]  # type: ignore[union-attr]
        assert error["code"] == "validation_error" and error["details"]["fields"][0]["field"] == "metadata"
        assert error["details"]["fields"][0]["limit"] == MAX_METADATA_BYTES


def test_metadata_limit_is_exactly_64_kib_of_compact_utf8() -> None:
    overhead = len('{"blob":""}')
    check_metadata_size({"blob": "x" * (MAX_METADATA_BYTES - overhead)})
    with pytest.raises(ValidationError) as caught:
        check_metadata_size({"blob": "x" * (MAX_METADATA_BYTES - overhead + 1)})
    assert caught.value.fields[0]["size"] == MAX_METADATA_BYTES + 1
    with pytest.raises(ValidationError):  # counted in UTF-8 bytes, not characters
        check_metadata_size({"blob": "é" * ((MAX_METADATA_BYTES - overhead) // 2 + 1)})


async def test_large_metadata_under_the_limit_is_stored(service: Service) -> None:
    roomy = {"notes": "x" * (60 * 1024)}
    item = await service.call("create_work_item", {"item_type": "task", "title": "roomy", "metadata": roomy})
    assert not item.is_error, item.payload
    assert item.payload["metadata"]["notes"] == roomy["notes"]
    vendor = await service.call("create_vendor", {"name": "roomy", "metadata": roomy})
    assert not vendor.is_error, vendor.payload
    over = {"notes": "x" * (MAX_METADATA_BYTES + 1)}
    update = {"name": "roomy", "version": 1, "metadata": over}
    assert bad_fields(await service.call("update_vendor_status", update)) == ["metadata"]


async def test_metadata_grown_past_the_limit_by_merged_updates_is_refused(service: Service) -> None:
    """Each update is small, but merging them would store an object over the limit."""
    created = await service.call("create_work_item", {"item_type": "task", "title": "grows"})
    ident, version = created.payload["id"], created.payload["version"]
    chunk = "y" * (MAX_METADATA_BYTES // 3)
    for n in range(2):
        outcome = await service.call(
            "update_work_item", {"id": ident, "version": version, "metadata": {f"k{n}": chunk}}
        )
        assert not outcome.is_error, outcome.payload
        version = outcome.payload["version"]
    third = await service.call("update_work_item", {"id": ident, "version": version, "metadata": {"k2": chunk}})
    assert bad_fields(third) == ["metadata"]
    shown = await service.call("query_work_item", {"id": ident})
    assert shown.payload["version"] == version and "k2" not in shown.payload["metadata"]


async def test_stored_non_finite_number_is_answered_as_null_in_standard_json(daemon: DaemonProcess) -> None:
    """A store written before these limits may hold Infinity: answers still parse as standard JSON."""
    async with daemon.client() as c:
        item = await c.call("create_work_item", item_type="task", title="old data")
    with sqlite3.connect(daemon.store_path, timeout=10) as conn:
        conn.execute("UPDATE work_items SET metadata = ? WHERE id = ?", ('{"old":Infinity,"nan":[NaN]}', item["id"]))
    async with RawSession.connect(daemon.socket_path, 10.0) as raw:
        answer = await raw.send_line(tool_call(3, "query_work_item", f'{{"id":"{item["id"]}"}}'), 3)
    assert answer is not None, answer
    result = answer["result"]
    assert result["structuredContent"]["metadata"] == {"old": None, "nan": [None]}
    assert strict_json(result["content"][0]["text"])["metadata"] == {"old": None, "nan": [None]}
    assert daemon.alive()
