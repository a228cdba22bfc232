"""The MCP tool surface (SPEC §4.1): one table of tools, each an argument model and a handler.

Handlers return plain dicts; :mod:`statusd.daemon.service` wraps them in the result envelope of
SPEC §4.2. Schemas for ``tools/list`` are generated from the argument models and then trimmed,
so the whole listing, annotations included, stays under its 5,000-token budget (P10).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statusd import models as m
from statusd.errors import ValidationError, VersionMismatchError
from statusd.progress import in_batches
from statusd.store import (
    WriteContext,
    configuration,
    conflicts,
    dependencies,
    deployments,
    enhancements,
    history,
    report,
    vendors,
    workitems,
)

if TYPE_CHECKING:
    from statusd.daemon.service import Call, Service

Handler = Callable[["Service", Any, "Call"], Awaitable[dict[str, Any]]]

CLAIM_RACE_RETRIES = 10  # cross-machine races one claim without an id may lose before it gives up


@dataclass(frozen=True)
class Tool:
    """One tool: its contract (name, arguments, handler) and the hints hosts act on (SPEC §4.4).

    ``destructive``: may overwrite or remove what is there (an update, a removal), not only add.
    ``idempotent``: the same call again changes nothing more (a version-guarded update fails the
    second time; an existing edge is a no-op). Reads are neither destructive nor effectful.
    """

    name: str
    description: str
    args: type[m.Args]
    handler: Handler
    writes: bool
    destructive: bool = False
    idempotent: bool = False
    title: str = ""

    def annotations(self) -> dict[str, Any]:
        """The MCP ``annotations`` object, derived from this declaration alone."""
        return {
            "title": self.title or self.name.replace("_", " ").capitalize(),
            "readOnlyHint": not self.writes,
            "destructiveHint": self.writes and self.destructive,
            "idempotentHint": not self.writes or self.idempotent,
            "openWorldHint": False,
        }


# --- handlers ----------------------------------------------------------------------------------


async def _create_work_item(svc: Service, a: m.CreateWorkItemArgs, call: Call) -> dict[str, Any]:
    return workitems.present(await svc.write(call, workitems.create, a), svc.now())


async def _update_work_item(svc: Service, a: m.UpdateWorkItemArgs, call: Call) -> dict[str, Any]:
    return workitems.present(await svc.write(call, workitems.update, a), svc.now())


async def _query_work_item(svc: Service, a: m.QueryWorkItemArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(workitems.query, a, svc.now())


async def _list_work_items(svc: Service, a: m.ListWorkItemsArgs, call: Call) -> dict[str, Any]:
    if a.text is not None:  # a substring scan over every live item: off the loop
        return await svc.store.read_off_loop(workitems.list_items, a, svc.now())
    return svc.store.read(workitems.list_items, a, svc.now())


async def _add_dependency(svc: Service, a: m.DependencyArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, dependencies.add, a)


async def _remove_dependency(svc: Service, a: m.DependencyArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, dependencies.remove, a)


async def _claim_work_item(svc: Service, a: m.ClaimWorkItemArgs, call: Call) -> dict[str, Any]:
    for attempt in itertools.count(1):
        try:
            item = await svc.write(call, workitems.claim, a)
            break
        except VersionMismatchError:
            # Another machine claimed the item first (SPEC §5.3). The rejection brought its claim into
            # this store, so a claimant that named no item takes the next ready one, as on one machine.
            if a.id is not None or attempt >= CLAIM_RACE_RETRIES:
                raise
    if item is None:
        call.warnings.append("nothing_ready: no ready work item to claim")
        return {"claimed": False, "item": None}
    return {"claimed": True, **workitems.present(item, svc.now())}


async def _create_vendor(svc: Service, a: m.CreateVendorArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, vendors.create, a)


async def _query_vendor_status(svc: Service, a: m.QueryVendorArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(vendors.query, a)


async def _update_vendor_status(svc: Service, a: m.UpdateVendorArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, vendors.update, a)


async def _record_deployment(svc: Service, a: m.RecordDeploymentArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, deployments.record, a)


async def _query_deployment(svc: Service, a: m.QueryDeploymentArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(deployments.query, a)


async def _list_deployments(svc: Service, a: m.ListDeploymentsArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(deployments.list_recent, a)


async def _create_enhancement(svc: Service, a: m.CreateEnhancementArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, enhancements.create, a)


async def _update_enhancement(svc: Service, a: m.UpdateEnhancementArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, enhancements.update, a)


async def _list_enhancements(svc: Service, a: m.ListEnhancementsArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(enhancements.list_all, a)


async def _get_configuration(svc: Service, a: m.NoArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(configuration.get)


async def _update_configuration(svc: Service, a: m.UpdateConfigurationArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, configuration.update, a)


async def _generate_full_status(svc: Service, a: m.GenerateStatusArgs, call: Call) -> dict[str, Any]:
    status = await svc.store.read_off_loop(report.full_status, svc.now())
    status["sync"] = svc.sync_summary()
    status["generated_at"] = svc.now()
    if a.output_format == "markdown":
        from statusd.sync.mirror import markdown_for

        status["markdown"] = await markdown_for(svc.store.path, svc.mirror, svc.degraded_banner())
    return status


ARCHIVE_BATCH = 50  # subtrees per transaction: progress and cancellation points between them


async def _trigger_archiving(svc: Service, a: m.NoArgs, call: Call) -> dict[str, Any]:
    roots, cutoff = svc.store.read(report.archive_plan, svc.now(), svc.archive_after_days)

    syncs: list[str | None] = []

    async def archive(batch: Sequence[str]) -> int:
        archived = await svc.write(call, report.archive_roots, list(batch), cutoff)
        syncs.append(call.sync)
        return archived

    archived = await in_batches(roots, ARCHIVE_BATCH, archive, call.progress)
    if not syncs:  # nothing to archive, nothing written
        call.sync = "local_only" if svc.replicator is None else "confirmed"
    elif "queued" in syncs:  # the weakest batch speaks for the call
        call.sync = "queued"
    call.warnings[:] = dict.fromkeys(call.warnings)
    return {"archived": archived, "subtrees": len(roots), "cutoff": cutoff}


async def _query_archived(svc: Service, a: m.QueryArchivedArgs, call: Call) -> dict[str, Any]:
    return await svc.store.read_off_loop(workitems.list_items, a, svc.now(), archived=True)


async def _query_history(svc: Service, a: m.QueryHistoryArgs, call: Call) -> dict[str, Any]:
    return await svc.store.read_off_loop(history.query, a)


async def _sync_status(svc: Service, a: m.NoArgs, call: Call) -> dict[str, Any]:
    return svc.sync_summary()


async def _list_conflicts(svc: Service, a: m.ListConflictsArgs, call: Call) -> dict[str, Any]:
    return svc.store.read(conflicts.list_conflicts, a)


async def _resolve_conflict(svc: Service, a: m.ResolveConflictArgs, call: Call) -> dict[str, Any]:
    return await svc.write(call, conflicts.resolve, a)


async def _migrate_legacy_markdown(svc: Service, a: m.MigrateLegacyArgs, call: Call) -> dict[str, Any]:
    from statusd.sync.migrate import migrate_tool

    progress = _threadsafe(call.progress)
    return await migrate_tool(svc.store, svc.mirror, a.path, a.dry_run, a.prompts_dir, call.actor, progress)


async def _import_tasks(svc: Service, a: m.ImportTasksArgs, call: Call) -> dict[str, Any]:
    from statusd.sync import importers
    from statusd.sync.importers import apply, runner

    try:
        plan = await asyncio.to_thread(importers.read_plan, a.source, a.path)
    except (OSError, ValueError) as exc:  # missing, unreadable, a NUL in the path, …
        raise ValidationError.one("path", str(exc)) from None
    options = apply.Options(dry_run=a.dry_run, progress=_threadsafe(call.progress))
    ctx = WriteContext(actor=call.actor)
    result = await runner.apply_plan(svc.store, ctx, plan, options)
    call.warnings.extend(ctx.warnings)
    # Chunked: the run's operations leave only once it is done, so there is no one transaction to
    # confirm; they are queued (the replicator is woken by the last commit).
    call.sync = "local_only" if a.dry_run or svc.replicator is None else "queued"
    return result


def _threadsafe(progress: Callable[[int, int], None] | None) -> Callable[[int, int], None] | None:
    """Progress is reported from the writer thread; hand it to the loop that owns the caller."""
    if progress is None:
        return None
    loop = asyncio.get_running_loop()

    def report(done: int, total: int) -> None:
        loop.call_soon_threadsafe(progress, done, total)

    return report


def _tool(
    name: str,
    description: str,
    args: type[m.Args],
    handler: Handler,
    *,
    writes: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    title: str = "",
) -> Tool:
    return Tool(name, description, args, handler, writes, destructive, idempotent, title)


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        _tool(
            "create_work_item",
            "Create a work item (project/session/task/research) under an optional parent (max depth 4). "
            "metadata is validated by item_type; unknown keys are kept.",
            m.CreateWorkItemArgs,
            _create_work_item,
            writes=True,
        ),
        _tool(
            "update_work_item",
            "Update a work item. version must equal the current version (optimistic locking; on "
            "version_mismatch re-read and retry). metadata is merged (null removes a key); "
            "parent_id null moves to top level; deleted soft-deletes or restores.",
            m.UpdateWorkItemArgs,
            _update_work_item,
            writes=True,
            destructive=True,
            idempotent=True,
        ),
        _tool(
            "query_work_item",
            "One work item with parent_chain (root first), dependencies and optionally nested children.",
            m.QueryWorkItemArgs,
            _query_work_item,
        ),
        _tool(
            "list_work_items",
            "List work items (compact rows) with filters; parent_id 'root' = top level; ready = "
            "claimable now; text searches title/description/imported source id. Paginate with next_cursor.",
            m.ListWorkItemsArgs,
            _list_work_items,
        ),
        _tool(
            "add_dependency",
            "Add an edge: depends_on = work_item waits for depends_on_id; blocks = work_item must "
            "finish first. Cycles are rejected; an existing edge is a no-op.",
            m.DependencyArgs,
            _add_dependency,
            writes=True,
            idempotent=True,
        ),
        _tool(
            "remove_dependency",
            "Remove a dependency edge.",
            m.DependencyArgs,
            _remove_dependency,
            writes=True,
            destructive=True,
            idempotent=True,
        ),
        _tool(
            "claim_work_item",
            "Claim a work item for a lease (id, or omit for the highest-priority ready item, optionally "
            "of item_type). Exactly one concurrent claimant wins.",
            m.ClaimWorkItemArgs,
            _claim_work_item,
            writes=True,
        ),
        _tool(
            "create_vendor",
            "Create a vendor (name unique case-insensitively). Defaults: broken, no formats, tests 0/0/0, "
            "version 0.0.0.",
            m.CreateVendorArgs,
            _create_vendor,
            writes=True,
        ),
        _tool(
            "query_vendor_status",
            "One vendor by name (case-insensitive), or all vendors (optionally by status) as vendors.",
            m.QueryVendorArgs,
            _query_vendor_status,
        ),
        _tool(
            "update_vendor_status",
            "Update a vendor's status and/or metadata (merged, re-validated); version as for work items.",
            m.UpdateVendorArgs,
            _update_vendor_status,
            writes=True,
            destructive=True,
            idempotent=True,
        ),
        _tool(
            "record_deployment",
            "Record an immutable deployment. metadata: pr_number, pr_title, commit_hash, test_summary "
            "{passed,failed,skipped}, constitutional_compliance, summary?. Linked ids must exist.",
            m.RecordDeploymentArgs,
            _record_deployment,
            writes=True,
        ),
        _tool(
            "query_deployment",
            "One deployment with affected_vendors and related_work_items.",
            m.QueryDeploymentArgs,
            _query_deployment,
        ),
        _tool(
            "list_deployments",
            "Deployments newest first; since = ISO time; vendor = name.",
            m.ListDeploymentsArgs,
            _list_deployments,
        ),
        _tool(
            "create_enhancement",
            "Create a future enhancement; target_quarter as 2026-Q1 or Q1 2026.",
            m.CreateEnhancementArgs,
            _create_enhancement,
            writes=True,
        ),
        _tool(
            "update_enhancement",
            "Update a future enhancement (id, version, fields to change).",
            m.UpdateEnhancementArgs,
            _update_enhancement,
            writes=True,
            destructive=True,
            idempotent=True,
        ),
        _tool("list_enhancements", "List future enhancements.", m.ListEnhancementsArgs, _list_enhancements),
        _tool("get_project_configuration", "The project configuration.", m.NoArgs, _get_configuration),
        _tool(
            "update_project_configuration",
            "Update the project configuration (version required).",
            m.UpdateConfigurationArgs,
            _update_configuration,
            writes=True,
            destructive=True,
            idempotent=True,
        ),
        _tool(
            "generate_full_status",
            "Project summary: vendor_health, active_work_items, recent_deployments, pending_enhancements, "
            "configuration, sync.",
            m.GenerateStatusArgs,
            _generate_full_status,
        ),
        _tool(
            "trigger_archiving",
            "Archive subtrees inactive for archive.after_days now; returns counts.",
            m.NoArgs,
            _trigger_archiving,
            writes=True,
            idempotent=True,
        ),
        _tool(
            "query_archived_work_items",
            "List archived work items (filters as list_work_items).",
            m.QueryArchivedArgs,
            _query_archived,
        ),
        _tool(
            "query_history",
            "Change history of any entity, newest first: versions [{version, at, by, via, changes}].",
            m.QueryHistoryArgs,
            _query_history,
        ),
        _tool("sync_status", "Replication and mirror state of this daemon.", m.NoArgs, _sync_status),
        _tool(
            "list_conflicts",
            "Writes that clashed with another machine's or that the hub refused: per field base, local, remote.",
            m.ListConflictsArgs,
            _list_conflicts,
        ),
        _tool(
            "migrate_legacy_markdown",
            "Import a legacy or free-form status file in one transaction with five reconciliation checks; "
            "keeps PATH.backup; rolls back on any failed check. dry_run reports without changing anything.",
            m.MigrateLegacyArgs,
            _migrate_legacy_markdown,
            writes=True,
            destructive=True,  # the file at path is rewritten (its original kept as PATH.backup)
            idempotent=True,  # migrating the same file again adds nothing
        ),
        _tool(
            "import_tasks",
            "Import beads (.beads/issues.jsonl), Backlog.md (backlog/) or Task Master (tasks.json) from path, "
            "all or nothing; re-import updates changed records only. Returns created/updated/unchanged/skipped.",
            m.ImportTasksArgs,
            _import_tasks,
            writes=True,
            destructive=True,  # a re-import overwrites fields changed at the source
            idempotent=True,  # the same source again changes nothing
        ),
        _tool(
            "resolve_conflict",
            "Settle a conflict: keep_remote (discard), keep_local (retry), or custom with values for disputed fields.",
            m.ResolveConflictArgs,
            _resolve_conflict,
            writes=True,
            destructive=True,
            idempotent=True,
        ),
    )
}


# --- schemas -----------------------------------------------------------------------------------


def _trim(node: Any) -> Any:
    """Drop what a model does not need from a pydantic JSON schema: titles, null branches, null defaults."""
    if isinstance(node, list):
        return [_trim(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _trim(v) for k, v in node.items() if k != "title" and not (k == "default" and v is None)}
    if isinstance(node.get("properties"), dict):  # argument names, not keywords: a "title" argument stays
        out["properties"] = {name: _trim(v) for name, v in node["properties"].items()}
    branches = out.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1:
            out.pop("anyOf")
            out = {**kept[0], **out}
    if out.get("additionalProperties") is True:
        out.pop("additionalProperties")
    return out


def input_schema(tool: Tool) -> dict[str, Any]:
    schema: dict[str, Any] = _trim(tool.args.model_json_schema())
    schema["additionalProperties"] = False
    actor = schema.get("properties", {}).get("actor")
    if isinstance(actor, dict):
        # Every tool takes it; the server's instructions explain it once rather than 25 times (P10).
        actor.pop("description", None)
    return schema
