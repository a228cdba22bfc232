"""Hub schema version 2: per-key metadata merge and cross-machine cycle checks (SPEC §5.4).

Replaces ``apply_op`` of version 1 (the tables do not change):

* each top-level ``metadata`` key is its own field: machines adding or changing different keys
  merge; the same key changed to different values is a conflict on ``metadata.<key>`` alone;
* a dependency edge made live (created, or un-deleted) that would close a cycle in the "waits for"
  graph is treated like a parent move that would close a cycle: kept as a conflict when queued
  (the edge reaches the hub deleted), refused with verdict ``cycle`` when confirmed;
* checks that walk the graph take a transaction-level advisory lock first, so two machines'
  pushes cannot each pass the check against a graph without the other's edge.
"""

from __future__ import annotations

GRAPH_LOCK_KEY = 0x5A7D_0002  # advisory lock serialising parent moves and edge activations per schema


def v2(s: str) -> str:
    return f"""
CREATE INDEX entities_dep_waiter ON {s}.entities ((data->>'work_item_id')) WHERE entity = 'dependency';
CREATE INDEX entities_dep_prereq ON {s}.entities ((data->>'depends_on_id')) WHERE entity = 'dependency';

-- Does ``start`` (transitively) wait for ``target`` over the live edges?
CREATE FUNCTION {s}.waits_for(start text, target text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    WITH RECURSIVE reach(id) AS (
        SELECT start
        UNION
        SELECT CASE WHEN e.data->>'dependency_type' = 'blocks' THEN e.data->>'work_item_id'
                    ELSE e.data->>'depends_on_id' END
          FROM reach r JOIN {s}.entities e
            ON e.entity = 'dependency' AND e.data->>'deleted_at' IS NULL
           AND ((e.data->>'dependency_type' = 'depends_on' AND e.data->>'work_item_id' = r.id)
             OR (e.data->>'dependency_type' = 'blocks' AND e.data->>'depends_on_id' = r.id))
    )
    SELECT EXISTS (SELECT 1 FROM reach WHERE id = target)
$fn$;

-- The reason a live edge with these fields would close a cycle, or NULL when it would not.
CREATE FUNCTION {s}.edge_cycle(edge jsonb) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    waiter text;
    prereq text;
BEGIN
    IF edge->>'deleted_at' IS NOT NULL OR edge->>'work_item_id' IS NULL THEN
        RETURN NULL;
    END IF;
    IF edge->>'dependency_type' = 'blocks' THEN
        waiter := edge->>'depends_on_id'; prereq := edge->>'work_item_id';
    ELSE
        waiter := edge->>'work_item_id'; prereq := edge->>'depends_on_id';
    END IF;
    PERFORM pg_advisory_xact_lock({GRAPH_LOCK_KEY}, hashtext('{s}'));
    IF waiter = prereq OR {s}.waits_for(prereq, waiter) THEN
        RETURN format('%s waiting for %s would close a cycle: %s already waits for %s', waiter, prereq, prereq, waiter);
    END IF;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {s}.apply_op(op jsonb, strict boolean) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    prior jsonb;
    cur {s}.entities%ROWTYPE;
    k text;
    mk text;
    ch jsonb;
    remote jsonb;
    applied jsonb := '{{}}';
    conflicts jsonb := '{{}}';
    newdata jsonb;
    old jsonb;
    new jsonb;
    merged jsonb;
    new_version integer;
    verdict text;
    result jsonb;
    clash {s}.entities%ROWTYPE;
    walker text;
    hops integer;
    cycle text;
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
        verdict := 'applied';
        IF op->>'entity' = 'dependency' THEN
            cycle := {s}.edge_cycle(newdata);
            IF cycle IS NOT NULL THEN
                IF strict THEN
                    RETURN jsonb_build_object('verdict', 'cycle', 'entity_id', op->>'entity_id', 'reason', cycle);
                END IF;
                -- Valid on each machine, not together: the edge arrives, deleted, and the pusher keeps a conflict.
                newdata := newdata || jsonb_build_object('deleted_at', op->'at');
                applied := applied
                    || jsonb_build_object('deleted_at', jsonb_build_object('old', null, 'new', op->'at'));
                conflicts := jsonb_build_object('deleted_at',
                    jsonb_build_object('base', null, 'local', null, 'remote', op->'at'));
                verdict := 'conflict';
            END IF;
        END IF;
        new_version := 1;
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
            IF k = 'metadata' AND jsonb_typeof(old) = 'object' AND jsonb_typeof(new) = 'object'
               AND jsonb_typeof(remote) = 'object' THEN
                -- Key by key: only the keys this op changed are merged, each against its own base.
                merged := remote;
                FOR mk IN SELECT jsonb_object_keys(old) UNION SELECT jsonb_object_keys(new) LOOP
                    CONTINUE WHEN coalesce(old->mk, 'null') = coalesce(new->mk, 'null');
                    IF coalesce(remote->mk, 'null') = coalesce(old->mk, 'null') THEN
                        IF new ? mk THEN
                            merged := merged || jsonb_build_object(mk, new->mk);
                        ELSE
                            merged := merged - mk;
                        END IF;
                    ELSIF coalesce(remote->mk, 'null') <> coalesce(new->mk, 'null') THEN
                        conflicts := conflicts || jsonb_build_object('metadata.' || mk, jsonb_build_object(
                            'base', coalesce(old->mk, 'null'), 'local', coalesce(new->mk, 'null'),
                            'remote', coalesce(remote->mk, 'null')));
                    END IF;
                END LOOP;
                IF merged <> remote THEN
                    newdata := newdata || jsonb_build_object('metadata', merged);
                    applied := applied
                        || jsonb_build_object('metadata', jsonb_build_object('old', remote, 'new', merged));
                END IF;
            ELSIF remote = old THEN
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
            PERFORM pg_advisory_xact_lock({GRAPH_LOCK_KEY}, hashtext('{s}'));
            walker := newdata->>'parent_id';
            FOR hops IN 1..64 LOOP
                EXIT WHEN walker IS NULL;
                IF walker = cur.id THEN
                    cycle := format('moving %s under %s would close a cycle: %s is already below it',
                                    cur.id, newdata->>'parent_id', newdata->>'parent_id');
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
        -- The same for an edge made live again (un-deleted) that would close a cycle.
        IF op->>'entity' = 'dependency' AND applied ? 'deleted_at' AND newdata->>'deleted_at' IS NULL THEN
            cycle := {s}.edge_cycle(newdata);
            IF cycle IS NOT NULL THEN
                conflicts := conflicts || jsonb_build_object('deleted_at', jsonb_build_object(
                    'base', coalesce(op->'changes'->'deleted_at'->'old', 'null'::jsonb), 'local', 'null'::jsonb,
                    'remote', coalesce(cur.data->'deleted_at', 'null'::jsonb)));
                applied := applied - 'deleted_at';
                newdata := jsonb_set(newdata, '{{deleted_at}}', coalesce(cur.data->'deleted_at', 'null'::jsonb));
            END IF;
        END IF;
        IF strict AND cycle IS NOT NULL THEN
            RETURN jsonb_build_object('verdict', 'cycle', 'entity_id', cur.id, 'version', cur.version,
                'data', cur.data, 'updated_by', cur.updated_by, 'reason', cycle);
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
    IF cycle IS NOT NULL THEN
        result := result || jsonb_build_object('reason', cycle);
    END IF;
    INSERT INTO {s}.ops(op_id, machine, result) VALUES ((op->>'op_id')::uuid, op->>'machine', result);
    RETURN result;
END
$fn$;
"""
