"""Tool dispatch independent of the transport: validate, run, wrap in the SPEC §4.2 envelope.

``Service.call(name, arguments, client=…)`` never raises for anything a caller sent: every failure
becomes an error payload ``{"error": {code, message, details}}`` with ``is_error`` set.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from statusd.daemon.tools import TOOLS, Tool
from statusd.errors import (
    CycleDetectedError,
    DuplicateError,
    NotFoundError,
    StatusdError,
    UnavailableError,
    ValidationError,
    VersionMismatchError,
)
from statusd.limits import check_arguments
from statusd.models import now_iso, parse_args
from statusd.progress import Progress
from statusd.store import Store, WriteContext, conflicts, entities, outbox
from statusd.store import schema as store_schema
from statusd.store.entities import ENTITIES
from statusd.store.import_runs import ImportInProgressError

if TYPE_CHECKING:
    from statusd.sync.mirror import Mirror
    from statusd.sync.replicator import Replicator

log = logging.getLogger(__name__)

_ID_FIELDS = ("id", "parent_id", "work_item_id", "depends_on_id")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Call:
    """One tool call: who is calling and what it has to say besides its result."""

    actor: str
    warnings: list[str] = field(default_factory=list)
    sync: str | None = None
    # (done, total) reporter for long calls, set by the transport when the caller sent a progressToken.
    progress: Progress | None = None


@dataclass
class Outcome:
    payload: dict[str, Any]
    is_error: bool


class Service:
    def __init__(
        self,
        store: Store,
        *,
        archive_after_days: int = 365,
        mirror_enabled: bool = False,
        replicator: Replicator | None = None,
        write_mode: str = "confirmed",
        confirm_timeout_s: float = 2.0,
    ) -> None:
        self.store = store
        self.replicator = replicator
        self.write_mode = write_mode
        self.confirm_timeout_s = confirm_timeout_s
        self.archive_after_days = archive_after_days
        self.mirror_enabled = mirror_enabled
        self.mirror: Mirror | None = None  # set by the daemon when mirror.enabled
        # A store rebuilt at start-up (SPEC §6): where its data came from, and the warning to show.
        self.data_source = "local_store"
        self.rebuild_warning: str | None = None
        self.started_at = now_iso()
        self.draining = False
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        # Scheduled upkeep's last runs and outcomes (set by the daemon once its scheduler runs).
        self.jobs: Callable[[], dict[str, Any]] = dict

    def now(self) -> str:
        return self.store.clock()

    async def write(
        self,
        call: Call,
        fn: Callable[Concatenate[sqlite3.Connection, WriteContext, P], T],
        *args: P.args,
        **kw: P.kwargs,
    ) -> T:
        ctx = WriteContext(actor=call.actor)
        # Registered before the transaction, so its operations are pushed strictly from the start.
        ticket = self.replicator.open_ticket(ctx) if self.replicator and self.write_mode == "confirmed" else None
        ctx.confirming = ticket is not None
        try:
            try:
                result = await self.store.write(fn, ctx, *args, **kw)
            except ImportInProgressError as exc:  # name what the call asked to touch
                named = {f: getattr(args[0], f, None) for f in _ID_FIELDS} if args else {}
                exc.details["ids"] = {f: v for f, v in named.items() if isinstance(v, str)}
                raise
            call.warnings.extend(ctx.warnings)
            if self.replicator is None:
                call.sync = "local_only"
            elif ticket is None:
                call.sync = "queued"  # async mode, or Postgres unreachable (the envelope says so)
            elif not ctx.op_ids:
                call.sync = "confirmed"  # nothing was asserted about any entity
            else:
                verdicts = await self.replicator.confirm(ticket, self.confirm_timeout_s)
                if verdicts.outcomes is None:
                    call.sync = "queued"
                    call.warnings.append(f"queued_for_sync: {verdicts.queued_because}")
                else:
                    _raise_rejection(verdicts.outcomes)
                    call.sync = "confirmed"
                    result = self._reread(result, verdicts.outcomes)
            return result
        finally:
            if ticket is not None:
                self.replicator.close_ticket(ticket)  # type: ignore[union-attr]

    def _reread(self, result: T, outcomes: list[dict[str, Any]]) -> T:
        """Answer with the settled row: the hub may have merged other changes or rejected earlier ones."""
        if not isinstance(result, dict) or "id" not in result or "version" not in result:
            return result
        for outcome in outcomes:
            if outcome.get("entity_id") == result["id"] and outcome.get("entity") in ENTITIES:
                current = self.store.read(entities.get, ENTITIES[outcome["entity"]], result["id"])
                if current is not None:
                    result.update({k: v for k, v in current.items() if k in result})
        return result

    def degraded_banner(self) -> str | None:
        """The mirror's warning line while Postgres is unreachable (SPEC §9); None when all is well."""
        if self.replicator is None or self.replicator.state.online:
            return None
        since = self.replicator.state.down_since
        return (
            f"Postgres unreachable{f' since {since}' if since else ''}; this file shows this machine's "
            "local store, and changes are sent when Postgres is back."
        )

    def open_conflicts(self) -> int:
        return self.store.read(conflicts.count_open)

    def rejected_operations(self) -> int:
        """Open records of operations the hub refused for good (counted in open_conflicts too)."""
        return self.store.read(conflicts.count_open, kind="rejected")

    def sync_summary(self) -> dict[str, Any]:
        pending = self.store.read(outbox.summary)
        hub = self.replicator.summary() if self.replicator is not None else None
        return {
            "mode": "replicated" if self.store.replicated else "standalone",
            "write_mode": self.write_mode if self.replicator is not None else None,
            "postgres": hub,
            "pending_outbox": pending[0],
            # Of those, operations of an import still running: they are sent once it is done.
            "held_for_import": self.store.read(outbox.held_count),
            "oldest_pending_at": pending[1],
            "last_push_at": hub["last_push_at"] if hub else None,
            "last_pull_at": hub["last_pull_at"] if hub else None,
            "open_conflicts": self.open_conflicts(),
            "rejected_operations": self.rejected_operations(),
            "mirror": self.mirror.summary() if self.mirror is not None else {"enabled": False, "state": "disabled"},
            "schema_versions": {"store": self.store.schema_version(), "store_latest": store_schema.LATEST_VERSION},
            "store_path": str(self.store.path),
            "daemon_started_at": self.started_at,
            "jobs": self.jobs(),
        }

    async def call(
        self,
        name: str,
        arguments: Any,
        *,
        client: str | None = None,
        progress: Progress | None = None,
    ) -> Outcome:
        tool = TOOLS.get(name)
        if tool is None:
            return Outcome(NotFoundError("tool", name).to_payload(), True)
        if self.draining:
            return Outcome(UnavailableError("the daemon is shutting down; retry shortly").to_payload(), True)
        self.in_flight += 1
        self.idle.clear()
        try:
            return await self._call(tool, name, arguments, client, progress)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()

    async def _call(
        self, tool: Tool, name: str, arguments: Any, client: str | None, progress: Progress | None
    ) -> Outcome:
        try:
            if arguments is not None and not isinstance(arguments, dict):
                raise ValidationError.one("arguments", "must be an object")
            if arguments:
                check_arguments(arguments)  # NUL, lone surrogates, NaN/Infinity, metadata size
            args = parse_args(tool.args, arguments)
            call = Call(actor=args.actor or client or "unknown", progress=progress)
            legacy = getattr(args, "updated_by", None) or getattr(args, "created_by", None)
            if legacy and not args.actor:  # the seed's clients name themselves this way
                call.actor = legacy
                call.warnings.append("deprecated_argument: created_by/updated_by are read as actor")
            data = await tool.handler(self, args, call)
        except StatusdError as exc:
            return Outcome(exc.to_payload(), True)
        except Exception:
            log.exception("tool %s failed", name)
            internal = StatusdError("internal error; the daemon log has the details", {"tool": name})
            return Outcome(internal.to_payload(), True)
        return Outcome(self._envelope(data, call, writes=tool.writes), False)

    def _envelope(self, data: dict[str, Any], call: Call, *, writes: bool) -> dict[str, Any]:
        out = dict(data)
        out.setdefault("success", True)  # a migration that rolled back answers success: false (SPEC §8)
        warnings = list(call.warnings)
        if self.rebuild_warning is not None:
            if self.data_source == "postgres" and self.store.meta("pull_cursor") is not None:
                self.data_source, self.rebuild_warning = "local_store", None  # the bootstrap has finished
            else:
                warnings.append(self.rebuild_warning)
        out["data_source"] = self.data_source
        if self.replicator is not None:
            warnings += self.replicator.warnings(write=writes and call.sync != "confirmed")
        count = self.open_conflicts() if self.store.replicated else 0
        if count:
            warnings.append(f"open_conflicts: {count}")
        if self.mirror is not None and not self.mirror.healthy and self.mirror.reason:
            warnings.append(f"mirror_{self.mirror.state}: {self.mirror.reason}")
        out["warnings"] = _once_per_code(warnings)
        if writes:
            out["sync"] = call.sync or ("queued" if self.store.replicated else "local_only")
            out["wrote_to_store"] = True
            # True when the mirror is running and has this change scheduled: the file shows it within
            # mirror.debounce_ms (docs/decisions.md); false when disabled, paused or failing.
            out["wrote_to_markdown"] = self.mirror is not None and self.mirror.healthy
        return out


def _once_per_code(warnings: list[str]) -> list[str]:
    """One warning per code (the text before the colon); the first, most specific, one is kept."""
    seen: set[str] = set()
    out = []
    for w in warnings:
        code = w.split(":", 1)[0]
        if code not in seen:
            seen.add(code)
            out.append(w)
    return out


def _raise_rejection(outcomes: list[dict[str, Any]]) -> None:
    """A confirmed write the hub refused fails exactly like a local version clash (SPEC §5.3)."""
    for o in outcomes:
        if o.get("verdict") == "rejected":
            raise VersionMismatchError(
                o["entity"], o["entity_id"], int(o["base_version"]), int(o["version"]), o.get("updated_by")
            )
        if o.get("verdict") == "duplicate":
            raise DuplicateError(o["entity"], "name", str((o.get("data") or {}).get("name", "")))
        if o.get("verdict") == "cycle":
            raise CycleDetectedError(str(o.get("reason") or "this change would close a cycle"), id=o["entity_id"])
        if o.get("verdict") == "invalid":  # the hub refused the values for good; nothing was kept
            reason = f"refused by the hub: {o.get('reason')}"
            raise ValidationError([{"field": f, "message": reason} for f in o.get("fields") or ["(operation)"]])
