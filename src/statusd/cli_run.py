"""``statusd run``: the daemon in the foreground, started without typer or rich (SPEC §11 P14).

systemd starts this on every boot and restart; the time to READY is the time to import what the
daemon needs, so the CLI layer adds nothing here. Exit codes: 78 (EX_CONFIG) for a bad
configuration or a store from a newer statusd, 75 (EX_TEMPFAIL) when another daemon owns the store.
"""

from __future__ import annotations

import sys
from pathlib import Path


def run_daemon(config: Path | None) -> int:
    """Run until SIGTERM; return the process exit code."""
    import asyncio

    from statusd.config import load_settings
    from statusd.errors import ConfigError, StatusdError, StoreLockedError

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        sys.stderr.write(f"statusd: bad configuration: {exc.message}\n")
        return 78
    from statusd.daemon import logs
    from statusd.daemon.app import Daemon

    logs.configure(settings.log.level)
    try:
        asyncio.run(Daemon(settings).run())
    except StoreLockedError as exc:
        sys.stderr.write(f"statusd: {exc.message}\n")
        return 75
    except StatusdError as exc:  # e.g. a store written by a newer statusd
        sys.stderr.write(f"statusd: {exc.message}\n")
        return 78
    return 0


def try_run(argv: list[str]) -> int | None:
    """Handle ``run [--config PATH]``; None for anything else (``--help``: typer words it)."""
    if argv[:1] != ["run"]:
        return None
    args = argv[1:]
    config: Path | None = None
    if len(args) == 2 and args[0] in ("--config", "-c"):
        config = Path(args[1])
    elif len(args) == 1 and args[0].startswith("--config="):
        config = Path(args[0].split("=", 1)[1])
    elif args:
        return None
    return run_daemon(config)
