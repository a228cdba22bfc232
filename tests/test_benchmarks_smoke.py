"""The benchmark runs end to end in smoke mode (tiny counts) and reports every figure; timings are not judged."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {
    "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13", "P14", "P15", "P16", "P17", "I1",
}  # fmt: skip


@pytest.mark.postgres
@pytest.mark.timeout(450)
def test_smoke_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=430,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    result = json.loads(out.read_text())
    assert result["mode"] == "smoke"
    assert result["errors"] == []
    rows = result["rows"]
    assert {r["figure"] for r in rows} == EXPECTED
    # The replicated rows beside the local ones: P4 confirmed, P6 replay and bootstrap.
    assert any(r["figure"] == "P4" and "confirmed" in r["what"] for r in rows)
    assert {r["what"].split(" ")[0] for r in rows if r["figure"] == "P6"} == {"replay", "bootstrap"}
    for row in rows:
        for key in ("p50", "p99"):
            value = row[key]
            assert isinstance(value, int | float) and math.isfinite(value), (row["figure"], row["what"], key, value)
        assert row["n"] >= 1
        assert row["verdict"] in ("PASS", "MISS", "—")
        # Invariants, not timings: no lost row or write, no deadlock.
        assert row["ok"], (row["figure"], row["what"], row["notes"])
    # Every figure line is in the printed table as well.
    for figure in EXPECTED:
        assert any(line.startswith(figure + " ") for line in proc.stdout.splitlines()), figure
