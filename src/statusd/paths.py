"""Where things live, computed with the standard library only.

The stdio bridge must answer within 150 ms of spawn, so it resolves the socket path here instead
of loading the full (pydantic) configuration. :mod:`statusd.config` uses the same functions, so the
two can never disagree.
"""

from __future__ import annotations

import os
import sys
import tempfile
import tomllib
import zlib
from collections.abc import Mapping
from pathlib import Path

# The longest socket path bind() accepts: sun_path is 108 bytes on Linux, 104 on macOS and the
# BSDs, with the terminating NUL inside.
SUN_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
DEFAULT_STORE_PATH = ".statusd/store.sqlite3"
# How much of the project name a default socket name keeps (the hash makes it unique).
_NAME_CHARS = 32


def project_key(root: Path) -> str:
    """Eight hex digits of the project directory's real path: two ``api`` projects never share."""
    # CRC-32, not hashlib: loading OpenSSL costs the bridge 2-20 ms, and this is no secret.
    return f"{zlib.crc32(os.fsencode(os.path.realpath(root))):08x}"


def default_socket_path(project: str, root: Path, env: Mapping[str, str] | None = None) -> Path:
    """Return ``<runtime dir>/statusd/<project>-<key>.sock``, ``key`` from the project directory.

    The runtime dir is ``$XDG_RUNTIME_DIR``, else a per-user directory under the temp dir. The
    project name is shortened (down to nothing) when the path would not fit in ``sun_path``.
    """
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR", "")
    # The XDG spec says to ignore a relative runtime dir.
    if runtime and os.path.isabs(runtime):
        directory = Path(runtime) / "statusd"
    else:
        directory = Path(tempfile.gettempdir()) / f"statusd-{os.getuid()}"
    suffix = f"{project_key(root)}.sock"
    room = SUN_PATH_MAX - len(os.fsencode(directory)) - 1 - len(suffix) - 1  # "/" and "-"
    name = project[: max(0, min(_NAME_CHARS, room))]
    while name and len(os.fsencode(name)) > room:  # multi-byte characters
        name = name[:-1]
    return directory / (f"{name}-{suffix}" if name else suffix)


def socket_path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a Unix socket here, or None."""
    size = len(os.fsencode(path))
    if size > SUN_PATH_MAX:
        return (
            f"{path} is {size} bytes; Unix socket paths on this platform are limited to {SUN_PATH_MAX}. "
            "Set socket.path to a shorter path"
        )
    return None


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
    return daemon_paths_for(config_path, env)[0]


def daemon_paths_for(config_path: Path | None, env: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Resolve ``(socket, store file)`` as :func:`statusd.config.load_settings` does, without pydantic."""
    env = os.environ if env is None else env
    path = config_path if config_path is not None else discover_config_file(env)
    data: dict[str, object] = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    root = (path.parent if path is not None else Path.cwd()).expanduser().absolute()

    def configured(section: str, default: object = None) -> Path | None:
        table = data.get(section)
        value = env.get(f"STATUSD_{section.upper()}__PATH") or (table.get("path") if isinstance(table, dict) else None)
        value = value or default
        if not value:
            return None
        given = Path(str(value)).expanduser()
        return given if given.is_absolute() else root / given

    store = configured("store", DEFAULT_STORE_PATH)
    assert store is not None
    sock = configured("socket")
    if sock is None:
        project = env.get("STATUSD_PROJECT") or data.get("project") or root.name
        sock = default_socket_path(str(project), root, env)
    return sock, store
