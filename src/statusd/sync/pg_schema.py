"""The shared PostgreSQL schema (SPEC §5.1): versioned, advisory-lock guarded, one schema per project.

Postgres is the replication hub, not a query surface: every entity is one row of ``entities``
(its fields as JSONB), every accepted change one row of ``changes`` (the replicated history, read by
pullers with a ``(txid, seq)`` cursor), and every operation id one row of ``ops`` with the verdict it
got, so a replayed operation gets the same verdict and changes nothing (SPEC §5.2).

``apply_op(op, strict)`` does the compare-and-set and the field-level merge of SPEC §5.3/§5.4 in
one server-side call, so a push costs one round trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import asyncpg

from statusd.errors import HubFaultError
from statusd.sync import pg_schema_v2

SCHEMA_LOCK_KEY = 0x5A7D_0001  # advisory lock guarding migrations (namespaced further by schema name)

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SchemaTooNewError(HubFaultError):
    """The hub was migrated by a newer statusd: sync pauses, local work goes on (SPEC §5.1)."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the Postgres schema is at version {found} but this statusd understands up to {known}; "
            "sync is paused (local work continues) until statusd is upgraded"
        )
        self.details = {"found": found, "known": known}
        self.found = found
        self.known = known


def _v1(s: str) -> str:
    return f"""
CREATE TABLE {s}.entities (
    id text PRIMARY KEY,
    entity text NOT NULL,
    version integer NOT NULL,
    data jsonb NOT NULL,
    updated_at text NOT NULL,
    updated_by text NOT NULL,
    machine text NOT NULL
);
CREATE UNIQUE INDEX entities_vendor_name ON {s}.entities (lower(data->>'name'))
    WHERE entity = 'vendor' AND data->>'deleted_at' IS NULL;

CREATE TABLE {s}.changes (
    seq bigserial NOT NULL,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    entity text NOT NULL,
    entity_id text NOT NULL,
    version integer NOT NULL,
    data jsonb NOT NULL,
    changes jsonb NOT NULL,
    op_id uuid,
    actor text NOT NULL,
    at text NOT NULL,
    machine text NOT NULL,
    via text NOT NULL,
    PRIMARY KEY (txid, seq)
);

CREATE TABLE {s}.ops (
    op_id uuid PRIMARY KEY,
    machine text NOT NULL,
    result jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION {s}.apply_op(op jsonb, strict boolean) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    prior jsonb;
    cur {s}.entities%ROWTYPE;
    k text;
    ch jsonb;
    remote jsonb;
    applied jsonb := '{{}}';
    conflicts jsonb := '{{}}';
    newdata jsonb;
    old jsonb;
    new jsonb;
    new_version integer;
    verdict text;
    result jsonb;
    clash {s}.entities%ROWTYPE;
    walker text;
    hops integer;
BEGIN
    SELECT o.result INTO prior FROM {s}.ops o WHERE o.op_id = (op->>'op_id')::uuid;
    IF FOUND THEN
        RETURN prior || jsonb_build_object('replayed', true);
    END IF;

    SELECT * INTO cur FROM {s}.entities e WHERE e.id = op->>'entity_id' FOR UPDATE;
    IF NOT FOUND AND (op->>'base_version')::integer <> 0 THEN
        -- An update of an entity the hub has never seen: the pusher must send its full state first.
        RETURN jsonb_build_object('verdict', 'missing', 'entity_id', op->>'entity_id');
    END IF;
    IF NOT FOUND THEN
        IF op->>'entity' = 'vendor' THEN
            SELECT * INTO clash FROM {s}.entities e
             WHERE e.entity = 'vendor' AND e.data->>'deleted_at' IS NULL
               AND lower(e.data->>'name') = lower(op->'changes'->'name'->>'new');
            IF FOUND THEN
                result := jsonb_build_object('verdict', 'duplicate', 'entity_id', clash.id,
                    'version', clash.version, 'data', clash.data, 'updated_by', clash.updated_by);
                INSERT INTO {s}.ops(op_id, machine, result) VALUES ((op->>'op_id')::uuid, op->>'machine', result);
                RETURN result;
            END IF;
        END IF;
        newdata := jsonb_build_object('created_at', op->>'at', 'created_by', op->>'actor');
        FOR k, ch IN SELECT * FROM jsonb_each(op->'changes') LOOP
            newdata := newdata || jsonb_build_object(k, ch->'new');
            applied := applied || jsonb_build_object(k, ch);
        END LOOP;
        new_version := 1;
        verdict := 'applied';
        INSERT INTO {s}.entities(id, entity, version, data, updated_at, updated_by, machine)
        VALUES (op->>'entity_id', op->>'entity', 1, newdata, op->>'at', op->>'actor', op->>'machine');
    ELSE
        IF strict AND cur.version <> (op->>'base_version')::integer THEN
            result := jsonb_build_object('verdict', 'rejected', 'entity_id', cur.id,
                'version', cur.version, 'data', cur.data, 'updated_by', cur.updated_by);
            RETURN result;  -- not recorded: the caller is told, and the op is withdrawn
        END IF;
        newdata := cur.data;
        FOR k, ch IN SELECT * FROM jsonb_each(op->'changes') LOOP
            -- A missing key and a JSON null are the same value here.
            remote := coalesce(newdata->k, 'null'::jsonb);
            old := coalesce(ch->'old', 'null'::jsonb);
            new := coalesce(ch->'new', 'null'::jsonb);
            IF remote = old THEN
                newdata := newdata || jsonb_build_object(k, new);
                applied := applied || jsonb_build_object(k, jsonb_build_object('old', remote, 'new', new));
            ELSIF remote = new THEN
                NULL;  -- both sides made the same change
            ELSE
                conflicts := conflicts || jsonb_build_object(k,
                    jsonb_build_object('base', old, 'local', new, 'remote', remote));
            END IF;
        END LOOP;
        -- Two machines re-parenting offline (X under Y here, Y under X there) each pass their own
        -- checks; the second move to arrive would close a cycle, so it becomes a conflict instead.
        IF op->>'entity' = 'work_item' AND applied ? 'parent_id' AND newdata->>'parent_id' IS NOT NULL THEN
            walker := newdata->>'parent_id';
            FOR hops IN 1..64 LOOP
                EXIT WHEN walker IS NULL;
                IF walker = cur.id THEN
                    conflicts := conflicts || jsonb_build_object('parent_id', jsonb_build_object(
                        'base', coalesce(op->'changes'->'parent_id'->'old', 'null'::jsonb),
                        'local', newdata->'parent_id',
                        'remote', coalesce(cur.data->'parent_id', 'null'::jsonb)));
                    applied := applied - 'parent_id';
                    newdata := jsonb_set(newdata, '{{parent_id}}', coalesce(cur.data->'parent_id', 'null'::jsonb));
                    EXIT;
                END IF;
                SELECT e.data->>'parent_id' INTO walker FROM {s}.entities e WHERE e.id = walker;
            END LOOP;
        END IF;
        IF strict AND conflicts <> '{{}}' THEN
            result := jsonb_build_object('verdict', 'rejected', 'entity_id', cur.id,
                'version', cur.version, 'data', cur.data, 'updated_by', cur.updated_by);
            RETURN result;
        END IF;
        IF applied = '{{}}' THEN
            new_version := cur.version;
        ELSE
            new_version := cur.version + 1;
            UPDATE {s}.entities SET version = new_version, data = newdata,
                   updated_at = op->>'at', updated_by = op->>'actor', machine = op->>'machine'
             WHERE id = cur.id;
        END IF;
        IF conflicts <> '{{}}' THEN
            verdict := 'conflict';
        ELSIF cur.version = (op->>'base_version')::integer THEN
            verdict := 'applied';
        ELSE
            verdict := 'merged';
        END IF;
    END IF;

    IF applied <> '{{}}' THEN
        INSERT INTO {s}.changes(entity, entity_id, version, data, changes, op_id, actor, at, machine, via)
        VALUES (op->>'entity', op->>'entity_id', new_version, newdata, applied, (op->>'op_id')::uuid,
                op->>'actor', op->>'at', op->>'machine',
                CASE WHEN verdict = 'merged' THEN 'merge' ELSE coalesce(op->>'via', 'tool') END);
        PERFORM pg_notify('{s}_changes', '');
    END IF;
    result := jsonb_build_object('verdict', verdict, 'entity_id', op->>'entity_id', 'version', new_version,
        'data', newdata, 'conflicts', conflicts);
    INSERT INTO {s}.ops(op_id, machine, result) VALUES ((op->>'op_id')::uuid, op->>'machine', result);
    RETURN result;
END
$fn$;

CREATE FUNCTION {s}.apply_ops(ops jsonb, strict boolean) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    op jsonb;
    results jsonb := '[]';
BEGIN
    FOR op IN SELECT * FROM jsonb_array_elements(ops) LOOP
        results := results || jsonb_build_array({s}.apply_op(op, coalesce((op->>'strict')::boolean, strict)));
    END LOOP;
    RETURN results;
END
$fn$;
"""


def _v3_upkeep(s: str) -> str:
    # One row per hub-wide upkeep job: the machine that last ran it and when. Claiming the row
    # (an upsert that only succeeds once the interval has passed) is what lets one machine prune.
    return f"""
CREATE TABLE {s}.upkeep (
    job text PRIMARY KEY,
    last_run_at timestamptz NOT NULL,
    machine text NOT NULL,
    outcome jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX ops_applied_at ON {s}.ops (applied_at);
"""


MIGRATIONS: list[tuple[str, Callable[[str], str]]] = [
    ("0001_hub", _v1),
    ("0002_per_key_metadata_and_edge_cycles", pg_schema_v2.v2),
    ("0003_upkeep", _v3_upkeep),
]
LATEST_VERSION = len(MIGRATIONS)


def check_schema_name(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"postgres.schema must match [a-z_][a-z0-9_]*, got {name!r}")
    return name


def channel(schema: str) -> str:
    return f"{schema}_changes"


async def migrate(conn: asyncpg.Connection, schema: str) -> int:
    """Create or upgrade the hub schema; return its version. Raises SchemaTooNewError."""
    s = check_schema_name(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", SCHEMA_LOCK_KEY, s)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.schema_version "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        have = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {s}.schema_version")
        if have > LATEST_VERSION:
            raise SchemaTooNewError(have, LATEST_VERSION)
        for number, (name, sql) in enumerate(MIGRATIONS, start=1):
            if number <= have:
                continue
            await conn.execute(sql(s))
            await conn.execute(f"INSERT INTO {s}.schema_version(version, name) VALUES ($1, $2)", number, name)
        return max(int(have), LATEST_VERSION)


async def installed_version(conn: asyncpg.Connection, schema: str) -> int:
    """The hub schema's version as installed, 0 when it was never created (read-only, for doctor)."""
    exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_version")
    version = await conn.fetchval(f"SELECT max(version) FROM {schema}.schema_version") if exists else 0
    return int(version or 0)


async def entity_state(conn: asyncpg.Connection, schema: str, ident: str) -> dict[str, Any] | None:
    """The hub's current state of one entity (version, data, updated_at, updated_by), or None."""
    row = await conn.fetchrow(
        f"SELECT version, data::text, updated_at, updated_by FROM {schema}.entities WHERE id = $1", ident
    )
    if row is None:
        return None
    return {"version": row[0], "data": json.loads(row[1]), "updated_at": row[2], "updated_by": row[3]}


# --- the replicator's queries (kept here: the hub's SQL lives in this module) -----------------


async def ping(conn: asyncpg.Connection) -> None:
    await conn.fetchval("SELECT 1")


async def apply_ops(conn: asyncpg.Connection, schema: str, ops_json: str) -> str:
    """Apply a batch of operations in one round trip; the verdicts as a JSON array."""
    return str(await conn.fetchval(f"SELECT {schema}.apply_ops($1::jsonb, false)::text", ops_json))


async def pull_page(conn: asyncpg.Connection, schema: str, txid: str, seq: int, limit: int) -> list[asyncpg.Record]:
    """Changes after the ``(txid, seq)`` cursor, each with whether it is deliverable yet (SPEC §5.5)."""
    return list(
        await conn.fetch(
            f"SELECT txid::text, seq, entity, entity_id, version, data::text, changes::text, op_id::text, "
            f"actor, at, machine, via, txid < pg_snapshot_xmin(pg_current_snapshot()) FROM {schema}.changes "
            "WHERE (txid, seq) > ($1::text::xid8, $2) ORDER BY txid, seq LIMIT $3",
            txid,
            seq,
            limit,
        )
    )


async def snapshot_start(conn: asyncpg.Connection, schema: str) -> tuple[int, str]:
    """Inside a repeatable-read transaction: (entity count, the pull cursor just behind this snapshot)."""
    total = await conn.fetchval(f"SELECT count(*) FROM {schema}.entities")
    cursor = await conn.fetchrow(
        f"SELECT txid::text AS txid, seq FROM {schema}.changes "
        "WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid DESC, seq DESC LIMIT 1"
    )
    return int(total), f"{cursor['txid']}:{cursor['seq']}" if cursor else "0:0"


async def entity_page(conn: asyncpg.Connection, schema: str, after_id: str, limit: int) -> list[asyncpg.Record]:
    """Hub entities by id after ``after_id``: (id, entity, version, data JSON, updated_at, updated_by)."""
    return list(
        await conn.fetch(
            f"SELECT id, entity, version, data::text, updated_at, updated_by FROM {schema}.entities "
            "WHERE id > $1 ORDER BY id LIMIT $2",
            after_id,
            limit,
        )
    )
