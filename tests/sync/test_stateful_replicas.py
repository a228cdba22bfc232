"""R5 (SPEC §12): replicas under random edits, partitions, crashes and replays converge, losing no intent.

Each example gets a fresh hub schema and 2–3 in-process replicas (a replicated Store, its Replicator
and the tool dispatcher), each reaching the hub through a TCP proxy of its own, so a partition is a
real network fault. Writes go through the tools, so a connected replica's writes are confirmed
(strict) and a partitioned one's are queued (merged later). At the end everyone is healed and,
once quiet, every store must equal the hub and every acknowledged write must have reached the hub
(exactly once), be kept as a conflict on the machine that made it, or have been superseded by that
machine's own later write to the same field.

Bounded for CI (10 examples); ``STATUSD_SOAK=1`` runs 300.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test
from sync_support import (
    Intent,
    Replica,
    assert_no_lost_intent,
    hub_connect,
    outbox_size,
    store_rows,
    wait_converged,
    wait_for,
)
from tcp_proxy import TcpProxy

from pg_support import drop_schema, fresh_schema
from soak import SOAK, bounded
from statusd.daemon.service import Service

EXAMPLES = bounded(10, 300)
VENDOR_NAMES = ["Acme", "ACME", "Globex"]
FIELDS = ["title", "description", "priority", "status"]
ENUMS = {"priority": ["critical", "high", "medium", "low"], "status": ["active", "blocked"]}
NODE = st.integers(0, 2)
PICK = st.integers(0, 2**16)


class Node:
    """One replica and its link to the hub."""

    def __init__(self, index: int, root: Path, dsn: str, schema: str) -> None:
        self.index = index
        self.proxy = TcpProxy.to(dsn)
        self.replica = Replica(root / f"m{index}.sqlite3", self.proxy.dsn_for(dsn), schema, machine=f"m{index}")
        self.replica.open().start()
        self.service = self._service()
        self.partitioned = False

    def _service(self) -> Service:
        return Service(self.replica.store, replicator=self.replica.replicator, confirm_timeout_s=0.5)

    async def crash(self) -> None:
        """Stop abruptly (whatever push was in flight stays unanswered) and start again from the file."""
        await self.replica.close()
        self.replica.open().start()
        self.service = self._service()


class Replicas(RuleBasedStateMachine):
    dsn: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.root = Path(tempfile.mkdtemp(prefix="r5-"))
        self.schema = fresh_schema(self.dsn, prefix="r5")
        self.nodes: list[Node] = []
        self.intents: list[Intent] = []
        self.counter = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def unique(self, what: str) -> str:
        self.counter += 1
        return f"{what}-{self.counter}"

    def call(self, node: Node, tool: str, **args: Any) -> dict[str, Any] | None:
        """Call a tool on a replica; None when it refused (version clash, duplicate, not ready…)."""
        outcome = self.run(node.service.call(tool, args, client="r5"))
        if outcome.is_error:
            code = outcome.payload["error"]["code"]
            assert code in ("version_mismatch", "duplicate", "validation_error", "not_found"), outcome.payload
            return None
        return dict(outcome.payload)

    @initialize(n=st.integers(2, 3))
    def start(self, n: int) -> None:
        async def open_all() -> None:
            self.nodes = [Node(i, self.root, self.dsn, self.schema) for i in range(n)]
            for node in self.nodes:
                await node.replica.wait_online()

        self.run(open_all())

    # --- edits ---------------------------------------------------------------------------------
    # Every draw happens before the rule looks at a store: what the stores hold depends on timing,
    # and Hypothesis must be able to replay the same draws.

    def node(self, n: int) -> Node:
        return self.nodes[n % len(self.nodes)]

    @rule(n=NODE)
    def create_item(self, n: int) -> None:
        node = self.node(n)
        title = self.unique("title")
        item = self.call(node, "create_work_item", item_type="task", title=title)
        assert item is not None
        if node.partitioned:
            assert item["sync"] == "queued" and any(w.startswith("queued_for_sync") for w in item["warnings"])
        self.intents.append(Intent(node.index, item["id"], "title", title))

    @rule(n=NODE, pick=PICK, field=st.sampled_from(FIELDS), choice=PICK)
    def update_item(self, n: int, pick: int, field: str, choice: int) -> None:
        node = self.node(n)
        rows = store_rows(node.replica.path, "SELECT id, version FROM work_items ORDER BY id")
        if not rows:
            return
        ident, version = rows[pick % len(rows)]
        value = ENUMS[field][choice % len(ENUMS[field])] if field in ENUMS else self.unique(field)
        if self.call(node, "update_work_item", id=ident, version=version, **{field: value}) is not None:
            self.intents.append(Intent(node.index, ident, field, value, unique=field not in ENUMS))

    @rule(n=NODE, name=st.sampled_from(VENDOR_NAMES))
    def create_vendor(self, n: int, name: str) -> None:
        node = self.node(n)
        vendor = self.call(node, "create_vendor", name=name)
        if vendor is not None:
            self.intents.append(Intent(node.index, vendor["id"], "name", name, unique=False))

    @rule(n=NODE, pick=PICK, status=st.sampled_from(["operational", "broken"]))
    def update_vendor(self, n: int, pick: int, status: str) -> None:
        node = self.node(n)
        rows = store_rows(node.replica.path, "SELECT name, version FROM vendors WHERE deleted_at IS NULL ORDER BY id")
        if not rows:
            return
        name, version = rows[pick % len(rows)]
        version_text = self.unique("v")
        metadata = {"extractor_version": version_text}
        vendor = self.call(node, "update_vendor_status", name=name, version=version, status=status, metadata=metadata)
        if vendor is not None:
            # Metadata merges key by key: the intent is the key this write set.
            self.intents.append(Intent(node.index, vendor["id"], "metadata.extractor_version", version_text))

    @rule(n=NODE, pick=PICK, resolution=st.sampled_from(["keep_local", "keep_remote"]))
    def resolve_a_conflict(self, n: int, pick: int, resolution: str) -> None:
        node = self.node(n)
        rows = store_rows(node.replica.path, "SELECT id FROM conflicts WHERE resolved_at IS NULL ORDER BY id")
        if rows:
            self.call(node, "resolve_conflict", id=rows[pick % len(rows)][0], resolution=resolution)

    # --- faults --------------------------------------------------------------------------------

    @precondition(lambda self: any(not n.partitioned for n in self.nodes))
    @rule(n=NODE)
    def partition(self, n: int) -> None:
        healthy = [node for node in self.nodes if not node.partitioned]
        node = healthy[n % len(healthy)]
        node.proxy.set_mode("reset")  # the replica finds out on its next push, or heartbeat
        node.partitioned = True

    @precondition(lambda self: any(n.partitioned for n in self.nodes))
    @rule(n=NODE)
    def heal(self, n: int) -> None:
        cut_off = [node for node in self.nodes if node.partitioned]
        self.heal_node(cut_off[n % len(cut_off)])

    def heal_node(self, node: Node) -> None:
        node.proxy.set_mode("pass")
        node.partitioned = False
        assert node.replica.replicator is not None
        node.replica.replicator.wake()
        self.run(node.replica.wait_online())

    @rule(n=NODE)
    def crash(self, n: int) -> None:
        node = self.node(n)
        self.run(node.crash())
        if not node.partitioned:
            self.run(node.replica.wait_online())

    @rule(n=NODE)
    def let_one_catch_up(self, n: int) -> None:
        node = self.node(n)
        if not node.partitioned:
            self.run(wait_for(lambda: outbox_size(node.replica.path) == 0, within=20, what="the outbox to drain"))

    @rule(pick=PICK)
    def replay_an_acknowledged_op(self, pick: int) -> None:
        """A lost acknowledgement: the same operation arrives again and must change nothing."""

        async def replay() -> None:
            conn = await hub_connect(self.dsn)
            try:
                ops = await conn.fetch(f"SELECT op_id::text, result::text FROM {self.schema}.ops ORDER BY op_id")
                if not ops:
                    return
                op_id, prior = ops[pick % len(ops)]
                before = await conn.fetch(f"SELECT id, version, data::text FROM {self.schema}.entities ORDER BY id")
                again = await conn.fetchval(
                    f"SELECT {self.schema}.apply_op($1::jsonb, false)::text",
                    json.dumps({"op_id": op_id, "entity": "work_item", "entity_id": "x", "base_version": 0,
                                "changes": {"title": {"old": None, "new": "replayed"}}}),
                )  # fmt: skip
                after = await conn.fetch(f"SELECT id, version, data::text FROM {self.schema}.entities ORDER BY id")
            finally:
                await conn.close()
            got = json.loads(again)
            assert got.pop("replayed") is True
            assert got == json.loads(prior)
            assert after == before

        self.run(replay())

    # --- the end -------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.nodes:
                for node in self.nodes:
                    if node.partitioned:
                        self.heal_node(node)
                paths = [n.replica.path for n in self.nodes]
                self.run(wait_converged(paths, self.dsn, self.schema, within=60))
                self.run(assert_no_lost_intent(self.intents, paths, self.dsn, self.schema))
        finally:
            for node in self.nodes:
                self.run(node.replica.close())
                node.proxy.close()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            drop_schema(self.dsn, self.schema)
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.soak
def test_r5_replicas_converge_without_losing_intent(pg_dsn: str) -> None:
    Replicas.dsn = pg_dsn
    run_state_machine_as_test(
        Replicas,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=50,
            deadline=None,
            # Shrinking replays slow examples many times: only worth it when soaking.
            phases=list(Phase) if SOAK else [Phase.explicit, Phase.generate],
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
