from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Start replicated daemons with ``fleet.start(pg_config(...))``; all are stopped afterwards."""
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        f.close()
