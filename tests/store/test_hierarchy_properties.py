"""Property test: any sequence of creates, moves and deletes keeps the hierarchy invariants."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd import models as m
from statusd.errors import StatusdError
from statusd.store import Store, WriteContext, workitems

# (op, a, b): a and b pick existing items by index modulo the count; b == -1 means "no parent".
Op = tuple[str, int, int]
ops = st.lists(
    st.tuples(st.sampled_from(["create", "move", "delete"]), st.integers(0, 50), st.integers(-1, 50)),
    min_size=1,
    max_size=40,
)


def check_invariants(store: Store) -> None:
    rows = store.reader.execute("SELECT id, parent_id, depth FROM work_items").fetchall()
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    for ident, (parent, depth) in by_id.items():
        assert 0 <= depth <= m.MAX_DEPTH
        assert depth == (0 if parent is None else by_id[parent][1] + 1), f"{ident} has a stale depth"
        seen = {ident}
        while parent is not None:  # walking up always ends at a root
            assert parent not in seen, "cycle"
            seen.add(parent)
            parent = by_id[parent][0]


def apply(store: Store, op: Op, ids: list[str]) -> None:
    kind, a, b = op
    c = WriteContext(actor="prop")
    parent = None if b < 0 or not ids else ids[b % len(ids)]
    if kind == "create" or not ids:
        args = m.parse_args(m.CreateWorkItemArgs, {"item_type": "task", "title": "x", "parent_id": parent})
        ids.append(store.write_sync(workitems.create, c, args)["id"])
        return
    target = ids[a % len(ids)]
    version = store.reader.execute("SELECT version FROM work_items WHERE id = ?", (target,)).fetchone()[0]
    change: dict[str, object] = {"parent_id": parent} if kind == "move" else {"deleted": True}
    args = m.parse_args(m.UpdateWorkItemArgs, {"id": target, "version": version, **change})
    store.write_sync(workitems.update, c, args)


@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_depths_stay_consistent_and_acyclic(sequence: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "prop.sqlite3", synchronous="NORMAL")
        store.open()
        try:
            ids: list[str] = []
            for op in sequence:
                try:
                    apply(store, op, ids)
                except StatusdError as exc:
                    assert exc.code in {"depth_limit", "cycle_detected", "validation_error"}, exc
                check_invariants(store)
        finally:
            store.close()
