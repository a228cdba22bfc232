"""Hub-wide upkeep that exactly one machine does per round: pruning old replay records.

The hub keeps every operation's verdict in ``ops`` so a replayed push gets the same answer (SPEC
§5.2). A replay only comes from a machine that pushed and lost the acknowledgement, so a record
older than the longest supported offline period (``sync.replay_retention_days``) is never needed.
Every daemon schedules the job; the ``upkeep`` row is claimed with one upsert that succeeds only
when the previous run is older than the interval, so one machine per interval deletes and the
others skip (the row lock serialises a race; READ COMMITTED re-checks the condition).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from statusd.sync import pg_schema, pg_schema_upkeep

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
        if await pg_schema_upkeep.claim_job(conn, s, PRUNE_JOB, machine, every) is None:
            holder = await pg_schema_upkeep.job_holder(conn, s, PRUNE_JOB)
            return {"pruned": 0, "skipped": f"pruned by {holder['machine']} at {holder['last_run_at'].isoformat()}"}
        deleted = 0
        while True:
            n = await pg_schema_upkeep.delete_ops_older_than(conn, s, retention_days, DELETE_BATCH)
            deleted += n
            if n < DELETE_BATCH:
                break
        outcome = {"pruned": deleted, "retention_days": retention_days}
        await pg_schema_upkeep.record_outcome(conn, s, PRUNE_JOB, outcome)
        return outcome
