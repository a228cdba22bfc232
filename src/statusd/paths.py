"""Where things live, computed with the standard library only.

The stdio bridge must answer within 150 ms of spawn, so it resolves the socket path here instead
of loading the full (pydantic) configuration. :mod:`statusd.config` uses the same functions, so the
two can never disagree.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path


def default_socket_path(project: str, env: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_RUNTIME_DIR/statusd/<project>.sock``, else a per-user dir under the temp dir."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR", "")
    # The XDG spec says to ignore a relative runtime dir.
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "statusd" / f"{project}.sock"
    return Path(tempfile.gettempdir()) / f"statusd-{os.getuid()}" / f"{project}.sock"


def discover_config_file(env: Mapping[str, str] | None = None) -> Path | None:
    """Return ``./statusd.toml``, else the user's ``statusd/statusd.toml``, else None."""
    env = os.environ if env is None else env
    local = Path.cwd() / "statusd.toml"
    if local.is_file():
        return local
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(base) / "statusd" / "statusd.toml"
    return user if user.is_file() else None


def socket_path_for(config_path: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """Resolve the daemon socket the way :func:`statusd.config.load_settings` does (project + socket.path)."""
    env = os.environ if env is None else env
    path = config_path if config_path is not None else discover_config_file(env)
    data: dict[str, object] = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    root = (path.parent if path is not None else Path.cwd()).expanduser().absolute()
    section = data.get("socket")
    configured = env.get("STATUSD_SOCKET__PATH") or (section.get("path") if isinstance(section, dict) else None)
    project = env.get("STATUSD_PROJECT") or data.get("project") or root.name
    if configured:
        sock = Path(str(configured)).expanduser()
        return sock if sock.is_absolute() else root / sock
    return default_socket_path(str(project), env)
