"""Scheduled upkeep (issue 9 item 4): jobs, their recorded outcomes, time zone, and hub pruning by one machine."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp_support import statusd_cmd

from statusd.config import load_settings
from statusd.daemon.upkeep import Upkeep
from statusd.errors import ConfigError
from statusd.store import Store
from statusd.sync import pg_schema
from statusd.sync.hub_upkeep import prune_replay_records


def settings_for(tmp_path: Path, extra: str = "") -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "statusd.toml"
    config.write_text(f'project = "upkeep"\n[socket]\npath = "{tmp_path}/s.sock"\n{extra}')
    return load_settings(config)


async def test_jobs_coalesce_never_overlap_and_record_their_outcome(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with Store(tmp_path / "s.sqlite3") as store, Upkeep(settings, store, None) as upkeep:
        jobs = {j.id: j for j in upkeep._scheduler.get_jobs()}
        assert set(jobs) == {"archive", "optimize"}  # standalone: no pull, no hub pruning
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1
        before = upkeep.summary()
        assert before["archive"]["outcome"] == "not_run_yet" and before["archive"]["next_run_at"]
        state = await upkeep.run_job("optimize", upkeep.optimize)
        assert state.outcome == "ok" and state.detail["optimized"] is True and "wal_pages" in state.detail
        state = await upkeep.run_job("archive", upkeep.archive)
        assert state.outcome == "ok" and state.detail["archived"] == 0

        async def broken() -> None:
            raise OSError("disk on fire")

        state = await upkeep.run_job("archive", broken)
        assert state.outcome == "error" and "disk on fire" in state.detail
        summary = upkeep.summary()
        assert summary["archive"]["runs"] == 2 and summary["archive"]["outcome"] == "error"
        assert summary["optimize"]["last_run_at"] is not None
    assert upkeep._scheduler is None, "leaving the block stopped the scheduler"


async def test_the_archive_schedule_runs_in_the_configured_time_zone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, '[archive]\nschedule = "30 3 * * *"\ntimezone = "Europe/Berlin"\n')
    async with Store(tmp_path / "s.sqlite3") as store, Upkeep(settings, store, None) as upkeep:
        nxt = upkeep._scheduler.get_job("archive").next_run_time
        assert (nxt.hour, nxt.minute) == (3, 30)
        assert nxt.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
        assert str(nxt.tzinfo) == "Europe/Berlin"
    default = settings_for(tmp_path / "d")
    assert default.archive.timezone == "UTC"


def test_an_unknown_time_zone_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"archive\.timezone.*Mars/Olympus"):
        settings_for(tmp_path, '[archive]\ntimezone = "Mars/Olympus"\n')


async def test_jobs_show_in_sync_status_and_statusd_status(daemon: Any) -> None:
    async with daemon.client() as c:
        sync = await c.call("sync_status")
    assert set(sync["jobs"]) == {"archive", "optimize"}
    assert sync["jobs"]["archive"]["next_run_at"]
    done = await asyncio.to_thread(
        subprocess.run, statusd_cmd("status", "--config", str(daemon.config_path)), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Job archive: last run None (not_run_yet); next " in done.stdout


async def _hub_with_ops(dsn: str, schema: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await pg_schema.migrate(conn, schema)
    for age_days in (200, 120, 10, 0):
        await conn.execute(
            f"INSERT INTO {schema}.ops(op_id, machine, result, applied_at) "
            "VALUES (gen_random_uuid(), 'm', '{}'::jsonb, now() - make_interval(days => $1))",
            age_days,
        )
    return conn


async def test_only_one_machine_prunes_replay_records_per_round(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    setup = await _hub_with_ops(dsn, schema)
    machines = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(prune_replay_records(c, schema, machine=f"m{i}", retention_days=90) for i, c in enumerate(machines))
        )
        winners = [r for r in results if "skipped" not in r]
        assert len(winners) == 1, results
        assert winners[0]["pruned"] == 2  # the 200- and 120-day-old records; 10 days and today stay
        assert all("pruned by m" in r["skipped"] for r in results if "skipped" in r)
        assert await setup.fetchval(f"SELECT count(*) FROM {schema}.ops") == 2
        again = await prune_replay_records(machines[0], schema, machine="m0", retention_days=1)
        assert "skipped" in again, "the next round waits for the interval, whoever asks"
        await setup.execute(f"UPDATE {schema}.upkeep SET last_run_at = now() - interval '21 hours'")
        later = await prune_replay_records(machines[1], schema, machine="m1", retention_days=1)
        assert later == {"pruned": 1, "retention_days": 1}
        row = await setup.fetchrow(f"SELECT machine, outcome FROM {schema}.upkeep WHERE job = 'prune_replay_records'")
        assert row["machine"] == "m1"
    finally:
        for c in (setup, *machines):
            await c.close()
