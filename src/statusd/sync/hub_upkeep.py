"""Hub-wide upkeep that exactly one machine does per round: pruning old replay records.

The hub keeps every operation's verdict in ``ops`` so a replayed push gets the same answer (SPEC
§5.2). A replay only comes from a machine that pushed and lost the acknowledgement, so a record
older than the longest supported offline period (``sync.replay_retention_days``) is never needed.
Every daemon schedules the job; the ``upkeep`` row is claimed with one upsert that succeeds only
when the previous run is older than the interval, so one machine per interval deletes and the
others skip (the row lock serialises a race; READ COMMITTED re-checks the condition).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg

from statusd.sync import pg_schema

PRUNE_JOB = "prune_replay_records"
PRUNE_EVERY = timedelta(hours=20)  # daily-ish, with slack for machines whose schedules drift
DELETE_BATCH = 50_000


async def prune_replay_records(
    conn: asyncpg.Connection,
    schema: str,
    *,
    machine: str,
    retention_days: int,
    every: timedelta = PRUNE_EVERY,
) -> dict[str, Any]:
    """Delete replay records older than ``retention_days`` if this machine wins the round."""
    s = pg_schema.check_schema_name(schema)
    async with conn.transaction():
        claimed = await conn.fetchval(
            f"""INSERT INTO {s}.upkeep AS u (job, last_run_at, machine) VALUES ($1, now(), $2)
                ON CONFLICT (job) DO UPDATE SET last_run_at = now(), machine = excluded.machine
                WHERE u.last_run_at < now() - $3::interval
                RETURNING machine""",
            PRUNE_JOB,
            machine,
            every,
        )
        if claimed is None:
            holder = await conn.fetchrow(f"SELECT machine, last_run_at FROM {s}.upkeep WHERE job = $1", PRUNE_JOB)
            return {"pruned": 0, "skipped": f"pruned by {holder['machine']} at {holder['last_run_at'].isoformat()}"}
        deleted = 0
        while True:
            status = await conn.execute(
                f"""DELETE FROM {s}.ops WHERE op_id IN (
                        SELECT op_id FROM {s}.ops WHERE applied_at < now() - make_interval(days => $1) LIMIT $2)""",
                retention_days,
                DELETE_BATCH,
            )
            n = int(status.split()[-1])
            deleted += n
            if n < DELETE_BATCH:
                break
        outcome = {"pruned": deleted, "retention_days": retention_days}
        await conn.execute(f"UPDATE {s}.upkeep SET outcome = $2::jsonb WHERE job = $1", PRUNE_JOB, json.dumps(outcome))
        return outcome
