"""How long the soak and fuzz tests run: bounded in the default suite (CI), long with ``STATUSD_SOAK=1``.

``scripts/soak`` sets the variable and repeats the long runs; the bounded counts are chosen so the
whole suite stays within its time budget while every generator and code path still runs.
"""

from __future__ import annotations

import os

SOAK = os.environ.get("STATUSD_SOAK") == "1"


def bounded(ci: int, soak: int) -> int:
    """``ci`` examples in the default suite, ``soak`` under ``STATUSD_SOAK=1``."""
    return soak if SOAK else ci
