"""Scheduled upkeep (apscheduler 3.x): archiving, the pull safety net, store optimisation, hub pruning.

Every job coalesces missed runs into one and never overlaps itself (``max_instances=1``). Each
job's last run, outcome and next run are kept here and shown by ``sync_status`` and ``statusd
status``. Cron schedules (``archive.schedule``) run in ``archive.timezone`` (default UTC; "local"
for the machine's zone); the interval jobs do not depend on a zone.

| job | when | what |
|---|---|---|
| archive | ``archive.schedule`` | archive inactive subtrees (SPEC §7) |
| pull | every ``sync.pull_interval_s`` (replicated) | ask the replicator for a pull, in case a NOTIFY was lost |
| optimize | every 6 h | ``PRAGMA optimize`` and a passive WAL checkpoint |
| prune | hourly (replicated) | one machine a day deletes hub replay records past retention |
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from types import TracebackType
from typing import Any, Self

from statusd.config import Settings, machine_name
from statusd.errors import ConfigError
from statusd.models import now_iso
from statusd.store import Store, WriteContext, report
from statusd.sync.replicator import Replicator

log = logging.getLogger(__name__)

OPTIMIZE_EVERY_H = 6
PRUNE_ATTEMPT_EVERY_H = 1
MISFIRE_GRACE_S = 3600


@dataclass
class JobState:
    last_run_at: str | None = None
    outcome: str | None = None  # "ok", "skipped" or "error"
    detail: Any = None
    duration_ms: float | None = None
    runs: int = 0


def timezone_of(name: str) -> tzinfo:
    if name == "local":
        from tzlocal import get_localzone

        return get_localzone()
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


class Upkeep:
    """``async with Upkeep(settings, store, replicator):`` runs the jobs; leaving stops the scheduler."""

    def __init__(self, settings: Settings, store: Store, replicator: Replicator | None) -> None:
        self.settings = settings
        self.store = store
        self.replicator = replicator
        self.timezone = timezone_of(settings.archive.timezone)
        self.state: dict[str, JobState] = {}
        self._scheduler: Any = None

    async def __aenter__(self) -> Self:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        s = self.settings
        scheduler = AsyncIOScheduler(
            timezone=self.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S},
        )
        try:
            cron = CronTrigger.from_crontab(s.archive.schedule, timezone=self.timezone)
        except ValueError as exc:  # whatever the configuration's own check let through
            raise ConfigError("archive.schedule", f"not a valid cron expression: {exc}") from None
        self._add(scheduler, "archive", self.archive, cron)
        self._add(scheduler, "optimize", self.optimize, IntervalTrigger(hours=OPTIMIZE_EVERY_H))
        if self.replicator is not None:
            self._add(scheduler, "pull", self.pull, IntervalTrigger(seconds=s.sync.pull_interval_s))
            self._add(scheduler, "prune", self.prune, IntervalTrigger(hours=PRUNE_ATTEMPT_EVERY_H))
        scheduler.start()
        self._scheduler = scheduler
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def _add(self, scheduler: Any, name: str, fn: Callable[[], Awaitable[Any]], trigger: Any) -> None:
        self.state[name] = JobState()
        scheduler.add_job(self._runner(name, fn), trigger, id=name, name=name)

    def _runner(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.run_job(name, fn)

        return run

    async def run_job(self, name: str, fn: Callable[[], Awaitable[Any]]) -> JobState:
        """Run one job now, recording its outcome (the scheduler calls this; so can tests)."""
        state = self.state.setdefault(name, JobState())
        started = time.perf_counter()
        state.last_run_at = now_iso()
        try:
            detail = await fn()
            skipped = isinstance(detail, dict) and "skipped" in detail
            state.outcome, state.detail = ("skipped" if skipped else "ok"), detail
        except Exception as exc:
            from statusd.sync.errors import describe

            state.outcome = "error"
            state.detail = describe(exc, self.settings.postgres_password())
            log.warning("upkeep job %s failed: %s", name, state.detail)
        state.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        state.runs += 1
        return state

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, st in self.state.items():
            job = self._scheduler.get_job(name) if self._scheduler is not None else None
            nxt = job.next_run_time.isoformat() if job is not None and job.next_run_time else None
            out[name] = {
                "last_run_at": st.last_run_at,
                "outcome": st.outcome or "not_run_yet",
                "detail": st.detail,
                "duration_ms": st.duration_ms,
                "runs": st.runs,
                "next_run_at": nxt,
            }
        return out

    # --- the jobs ------------------------------------------------------------------------------

    async def archive(self) -> dict[str, Any]:
        result = await self.store.write(
            report.archive, WriteContext(actor="statusd-archiver"), self.settings.archive.after_days
        )
        log.info("archiving: %s", result)
        return dict(result)

    async def optimize(self) -> dict[str, Any]:
        return await self.store.maintain()

    async def pull(self) -> dict[str, Any]:
        assert self.replicator is not None
        if not self.replicator.request_pull():
            return {"skipped": "Postgres is unreachable; the replicator retries by itself"}
        return {"requested": True, "last_pull_at": self.replicator.state.last_pull_at}

    async def prune(self) -> dict[str, Any]:
        import asyncpg

        from statusd.sync.hub_upkeep import prune_replay_records

        dsn = self.settings.postgres_dsn()
        if dsn is None or self.replicator is None:
            return {"skipped": "standalone"}
        if not self.replicator.state.online:
            return {"skipped": "Postgres is unreachable"}
        kwargs: dict[str, Any] = {"timeout": 5, "command_timeout": 300}
        password = self.settings.postgres_password()
        if password is not None:
            kwargs["password"] = password
        conn = await asyncpg.connect(dsn, **kwargs)
        try:
            return await prune_replay_records(
                conn,
                self.settings.postgres.schema_name,
                machine=machine_name(),
                retention_days=self.settings.sync.replay_retention_days,
            )
        finally:
            await conn.close()
