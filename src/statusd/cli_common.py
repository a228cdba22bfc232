"""What every ``statusd`` command module shares: the Typer app, the consoles, common options.

Its own module so command modules (``cli_app``, ``cli_transfer``) import it rather than each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from statusd.config import Settings, load_settings
from statusd.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local-first project status for AI assistants.")
# Printed data is user text: no ":name:" emoji substitution; errors stay one line for journald and grep.
out = Console(emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="statusd.toml (default: ./statusd.toml, then user config dir)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a summary")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]statusd: bad configuration:[/] {escape(exc.message)}")
        raise typer.Exit(78) from None
