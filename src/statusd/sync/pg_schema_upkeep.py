"""The hub's SQL for upkeep jobs (``upkeep`` claims, replay-record pruning); sync/hub_upkeep.py decides."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg


async def claim_job(conn: asyncpg.Connection, s: str, job: str, machine: str, every: timedelta) -> str | None:
    """Claim ``job`` for ``machine`` if its last run is older than ``every``; None when another run is recent."""
    claimed: str | None = await conn.fetchval(
        f"""INSERT INTO {s}.upkeep AS u (job, last_run_at, machine) VALUES ($1, now(), $2)
            ON CONFLICT (job) DO UPDATE SET last_run_at = now(), machine = excluded.machine
            WHERE u.last_run_at < now() - $3::interval
            RETURNING machine""",
        job,
        machine,
        every,
    )
    return claimed


async def job_holder(conn: asyncpg.Connection, s: str, job: str) -> asyncpg.Record:
    """The machine and time of the job's latest run."""
    return await conn.fetchrow(f"SELECT machine, last_run_at FROM {s}.upkeep WHERE job = $1", job)


async def delete_ops_older_than(conn: asyncpg.Connection, s: str, days: int, limit: int) -> int:
    """Delete up to ``limit`` replay records applied more than ``days`` ago; return how many went."""
    status = await conn.execute(
        f"""DELETE FROM {s}.ops WHERE op_id IN (
                SELECT op_id FROM {s}.ops WHERE applied_at < now() - make_interval(days => $1) LIMIT $2)""",
        days,
        limit,
    )
    return int(status.split()[-1])


async def record_outcome(conn: asyncpg.Connection, s: str, job: str, outcome: dict[str, Any]) -> None:
    await conn.execute(f"UPDATE {s}.upkeep SET outcome = $2::jsonb WHERE job = $1", job, json.dumps(outcome))
