"""notifications/message as Postgres is lost and regained (SPEC §4.4), behind a fault-injecting proxy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tcp_proxy import TcpProxy

from surface_support import raw_client, serving

pytestmark = pytest.mark.postgres


async def test_lost_and_regained_postgres_are_log_messages(tmp_path: Path, pg_schema: tuple[str, str]):
    dsn, schema = pg_schema
    with TcpProxy.to(dsn) as proxy:
        async with (
            serving(tmp_path / "store.sqlite3", hub=(proxy.dsn_for(dsn), schema)) as server,
            raw_client(server.path) as client,
        ):
            await client.initialize()
            await client.request(1, "logging/setLevel", {"level": "info"})
            replicator = server.service.replicator
            assert replicator is not None
            task = asyncio.create_task(replicator.run())
            try:
                first = await client.notification("notifications/message", within=30)
                proxy.set_mode("reset")
                lost = await client.notification("notifications/message", within=30)
                proxy.set_mode("pass")
                regained = await client.notification("notifications/message", within=30)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    events = [m["params"]["data"]["event"] for m in (first, lost, regained)]
    assert events == ["postgres_regained", "postgres_lost", "postgres_regained"]
    assert [m["params"]["level"] for m in (first, lost, regained)] == ["info", "warning", "info"]
    assert all(m["params"]["logger"] == "statusd" for m in (first, lost, regained))
    assert "password" not in json.dumps(lost)
