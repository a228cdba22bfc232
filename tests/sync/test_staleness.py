"""SPEC §6: data older than 30 minutes is a warning on every result, never an error."""

from __future__ import annotations

import time

from statusd.store import Store
from statusd.sync.replicator import Replicator


async def test_stale_after_thirty_minutes_without_a_pull(store: Store) -> None:
    rep = Replicator(store, dsn="postgresql://127.0.0.1:1/none", password=None, schema="stale_probe")
    rep.state.last_pull_monotonic = time.monotonic() - 29 * 60
    assert not any(w.startswith("stale") for w in rep.warnings(write=False))
    rep.state.last_pull_monotonic = time.monotonic() - 42 * 60 - 5
    assert "stale: last pull 42 min ago" in rep.warnings(write=False)
    # Offline too (the default state): reads warn, writes also say they are queued.
    assert any(w.startswith("database_unavailable") for w in rep.warnings(write=False))
    assert any(w.startswith("queued_for_sync") for w in rep.warnings(write=True))
    assert not any(w.startswith("queued_for_sync") for w in rep.warnings(write=False))
