"""The daemon process: open the store, listen, schedule archiving, shut down cleanly.

Start-up order is what systemd's READY=1 promises: the store is open and the socket listens.
Postgres is never waited for. SIGTERM/SIGINT stop new calls, let in-flight calls finish (bounded),
close the store and remove the socket, so the process exits 0 well within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import os
import signal
from typing import Any

import anyio

from statusd.config import Settings
from statusd.daemon import systemd
from statusd.daemon.server import SocketServer
from statusd.daemon.service import Service
from statusd.errors import ConfigError
from statusd.store import Store, WriteContext, report
from statusd.sync.replicator import Replicator

log = logging.getLogger(__name__)

DRAIN_SECONDS = 3.0


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Daemon:
    """``await Daemon(settings).run()`` serves until ``stop()`` or a termination signal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = State.NEW
        self.store: Store | None = None
        self.service: Service | None = None
        self.server: SocketServer | None = None
        self.replicator: Replicator | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        if self.state is not State.NEW:
            raise RuntimeError(f"a Daemon runs once; this one is {self.state.value}. Create a new Daemon.")
        s = self.settings
        loop = asyncio.get_running_loop()
        self.store = Store(
            s.store.path,
            synchronous=s.store.synchronous,
            project=s.project,
            replicated=s.replicated,
        )
        self.store.open()
        try:
            if self.store.moved_aside is not None:
                log.warning("the unreadable store was kept at %s", self.store.moved_aside)
            dsn = s.postgres_dsn()
            if dsn is not None:
                self.replicator = Replicator(
                    self.store,
                    dsn=dsn,
                    password=s.postgres_password(),
                    schema=s.postgres.schema_name,
                    pull_interval_s=s.sync.pull_interval_s,
                )
                self.store.add_listener(self.replicator.wake)
            self.service = Service(
                self.store,
                archive_after_days=s.archive.after_days,
                mirror_enabled=False,
                replicator=self.replicator,
                write_mode=s.sync.write_mode,
                confirm_timeout_s=s.sync.confirm_timeout_ms / 1000,
            )
            self.server = SocketServer(self.service, s.socket_path, owner=f"project {s.project!r} in {s.root}")
            await self.server.start()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            scheduler = self._start_scheduler()
            self.state = State.RUNNING
            log.info("statusd serving project %s on %s (store %s)", s.project, s.socket_path, s.store.path)
            systemd.ready()
            mode = f"replicated via {s.postgres_dsn_redacted()}" if s.replicated else "standalone"
            systemd.status(f"serving {s.project}: {mode}, store {s.store.path.name}")
            self.ready.set()
            # Start-up objects (SDK models, schemas, settings) live as long as the process: keep them
            # out of every later collection, and collect young objects less often (p99 of a call).
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 20, 20)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.server.serve)
                tg.start_soon(self._watchdog)
                if systemd.watchdog_interval_s() is not None or os.environ.get("NOTIFY_SOCKET"):
                    tg.start_soon(self._status_line)
                if self.replicator is not None:
                    tg.start_soon(self.replicator.run)
                await self._stop.wait()
                self.state = State.STOPPING
                systemd.stopping()
                await self._drain()
                tg.cancel_scope.cancel()
            if scheduler is not None:
                scheduler.shutdown(wait=False)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            if self.server is not None:
                await self.server.close()
            self.store.close()
            self.state = State.STOPPED
            log.info("statusd stopped")

    async def _drain(self) -> None:
        """Refuse new calls, then wait (bounded) for the ones in flight."""
        assert self.service is not None and self.server is not None
        self.service.draining = True
        await self.server.stop_accepting()
        with anyio.move_on_after(DRAIN_SECONDS):
            await self.service.idle.wait()
            await self.server.answers.idle.wait()  # handlers done is not answers written

    async def _status_line(self) -> None:
        """Keep systemd's status line showing the sync summary (SPEC §5.6)."""
        assert self.service is not None
        last = ""
        while True:
            sync = self.service.sync_summary()
            hub = sync["postgres"]
            text = f"{self.settings.project}: {sync['mode']}"
            if hub is not None:
                text += ", postgres " + ("up" if hub["reachable"] else f"down since {hub['down_since']}")
            text += f", {sync['pending_outbox']} pending, {sync['open_conflicts']} conflicts"
            if text != last:
                systemd.status(text)
                last = text
            await anyio.sleep(5)

    async def _watchdog(self) -> None:
        interval = systemd.watchdog_interval_s()
        if interval is None:
            return
        while True:
            systemd.watchdog_ping()
            await anyio.sleep(interval / 2)

    def _start_scheduler(self) -> Any:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger

        try:
            trigger = CronTrigger.from_crontab(self.settings.archive.schedule, timezone="UTC")
        except ValueError as exc:  # whatever the configuration's own check let through
            raise ConfigError("archive.schedule", f"not a valid cron expression: {exc}") from None
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(self._archive, trigger, id="archive")
        scheduler.start()
        return scheduler

    async def _archive(self) -> None:
        assert self.store is not None
        result = await self.store.write(
            report.archive, WriteContext(actor="statusd-archiver"), self.settings.archive.after_days
        )
        log.info("archiving: %s", result)
