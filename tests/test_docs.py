"""The README is part of the product: its commands and tool list must match what ships."""

from __future__ import annotations

import re
from pathlib import Path

from statusd.daemon.tools import TOOLS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_lists_every_tool_with_its_description() -> None:
    for tool in TOOLS.values():
        assert f"| `{tool.name}` | {tool.description} |" in README, tool.name


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_same_test_command() -> None:
    block = re.search(r"## Set up\n\n```bash\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("statusd run")
    assert commands[1] == "scripts/test"
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_readme_benchmark_table_names_its_command_and_machine() -> None:
    section = README.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    assert "python -m benchmarks" in section
    for figure in ("P1", "P2", "P3", "P4", "P5", "P10", "P11"):
        assert f"| {figure} " in section, figure
