from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_support import FakeClock

from statusd.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cstore(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    """An open store whose clock only moves when the test says so."""
    async with Store(tmp_path / "clocked.sqlite3", machine="test-machine", clock=clock) as s:
        yield s
