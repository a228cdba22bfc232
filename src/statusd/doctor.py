"""``statusd doctor``: check configuration, socket, store, Postgres, mirror and the installed unit.

Each check is ``ok``, ``warn`` (works, but worth a look) or ``fail`` (something is broken), with
a sentence saying what to do. The command exits 1 when any check fails, else 0. Read-only: the
store is opened read-only and nothing is written anywhere, so it is safe beside a running daemon.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from statusd import service_units
from statusd.config import Settings, load_settings
from statusd.errors import ConfigError, StatusdError
from statusd.quick_client import QuickClient, WrongDaemonError
from statusd.store import health as store_health
from statusd.store import schema as store_schema

Status = Literal["ok", "warn", "fail", "skip"]
LAG_WARN_S = 5 * 60


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def check_config(config: Path | None) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        return Check("config", "fail", exc.message, "fix the named key (config.example.toml lists every key)"), None
    where = str(settings.root / "statusd.toml") if config is None else str(config)
    return Check("config", "ok", f"{where}: project {settings.project!r}"), settings


def check_socket(settings: Settings) -> tuple[list[Check], dict[str, Any] | None]:
    path = settings.socket_path
    start = "start the daemon: statusd run (or statusd service install)"
    if not path.exists():
        return [Check("socket", "fail", f"{path} does not exist: no daemon is running", start)], None
    checks = []
    st = path.stat()
    if not stat.S_ISSOCK(st.st_mode):
        return [Check("socket", "fail", f"{path} is not a socket", f"remove it, then {start}")], None
    if st.st_uid != os.getuid():
        checks.append(Check("socket owner", "fail", f"{path} belongs to uid {st.st_uid}, not you ({os.getuid()})",
                            "another user's daemon has this path: set socket.path to one of your own"))  # fmt: skip
    if stat.S_IMODE(st.st_mode) & 0o077:
        checks.append(Check("socket mode", "fail", f"{path} is {_mode(path)}: other users may connect",
                            "restart the daemon (it creates the socket 0600 in a 0700 directory)"))  # fmt: skip
    try:
        with QuickClient(path, client_name="statusd-doctor", timeout_s=10, store=settings.store.path) as client:
            sync = client.call("sync_status", {})
    except WrongDaemonError as exc:
        checks.append(Check("daemon", "fail", exc.message, "give each project its own socket.path"))
        return checks, None
    except StatusdError as exc:
        checks.append(Check("daemon", "fail", exc.message, f"the socket is stale: {start}"))
        return checks, None
    checks.insert(0, Check("daemon", "ok", f"answering on {path} ({sync.get('mode')})"))
    return checks, sync


def check_store(settings: Settings) -> list[Check]:
    path = settings.store.path
    if not path.exists():
        return [Check("store", "warn", f"{path} does not exist yet", "the daemon creates it on first start")]
    checks = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            verdict = store_health.integrity_verdict(conn)
            version = store_schema.current_version(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [Check("store", "fail", f"{path}: {exc}", "stop the daemon and move the file aside; it starts empty "
                      "(or bootstraps from Postgres with statusd sync --bootstrap)")]  # fmt: skip
    if verdict == "ok":
        checks.append(Check("store integrity", "ok", f"{path}: integrity_check ok"))
    else:
        checks.append(Check("store integrity", "fail", f"{path}: {verdict}",
                            "stop the daemon; it moves a corrupt store aside and rebuilds (SPEC §6)"))  # fmt: skip
    latest = store_schema.LATEST_VERSION
    if version > latest:
        checks.append(Check("store schema", "fail", f"version {version}, newer than this statusd ({latest})",
                            "upgrade statusd"))  # fmt: skip
    elif version < latest:
        checks.append(Check("store schema", "warn", f"version {version}; this statusd migrates it to {latest}",
                            "restart the daemon to migrate"))  # fmt: skip
    else:
        checks.append(Check("store schema", "ok", f"version {version} (latest)"))
    loose = [f"{p} is {_mode(p)}" for p in (path, path.parent) if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o022]
    if loose:
        checks.append(Check("store modes", "fail", "; ".join(loose) + ": writable by other users",
                            f"chmod go-w {path.parent} {path}"))  # fmt: skip
    elif stat.S_IMODE(path.stat().st_mode) & 0o004:
        checks.append(Check("store modes", "warn", f"{path} is {_mode(path)}: readable by other users",
                            f"chmod 600 {path} if the project is private"))  # fmt: skip
    else:
        checks.append(Check("store modes", "ok", f"{path} is {_mode(path)}"))
    return checks


async def _hub(settings: Settings) -> tuple[int | None, str | None]:
    import asyncpg

    from statusd.sync import pg_schema
    from statusd.sync.errors import describe

    dsn = settings.postgres_dsn()
    password = settings.postgres_password()
    kwargs: dict[str, Any] = {"timeout": 5}
    if password is not None:
        kwargs["password"] = password
    try:
        conn = await asyncpg.connect(dsn, **kwargs)
    except Exception as exc:
        return None, describe(exc, password)
    try:
        name = settings.postgres.schema_name
        return await pg_schema.installed_version(conn, name), None
    finally:
        await conn.close()


def check_postgres(settings: Settings, sync: dict[str, Any] | None) -> list[Check]:
    if not settings.replicated:
        return [Check("postgres", "skip", "standalone (no postgres.dsn)")]
    from statusd.sync import pg_schema

    version, error = asyncio.run(_hub(settings))
    target = settings.postgres_dsn_redacted()
    if error is not None:
        return [Check("postgres", "fail", f"{target}: {error}",
                      "start Postgres or fix postgres.dsn / the password; local work continues meanwhile")]  # fmt: skip
    checks = [Check("postgres", "ok", f"{target} reachable")]
    latest = pg_schema.LATEST_VERSION
    if version is None or version == 0:
        checks.append(Check("hub schema", "warn", "not created yet", "start the daemon: it creates the schema"))
    elif version > latest:
        checks.append(Check("hub schema", "fail", f"version {version}, newer than this statusd ({latest}); sync paused",
                            "upgrade statusd on this machine"))  # fmt: skip
    else:
        level: Status = "ok" if version == latest else "warn"
        checks.append(Check("hub schema", level, f"version {version} (latest {latest})"))
    if sync is not None:
        refused = sync.get("rejected_operations")
        checks.extend(_lag(sync, int(refused) if refused is not None else _stuck_ops(settings.store.path)))
    return checks


def _stuck_ops(path: Path) -> int:
    """Queued operations the hub has answered with an error at least once."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return store_health.refused_outbox_count(conn)
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _lag(sync: dict[str, Any], rejected: int) -> list[Check]:
    from datetime import UTC, datetime

    pending, oldest = sync.get("pending_outbox", 0), sync.get("oldest_pending_at")
    checks = []
    age = None
    if oldest:
        age = (datetime.now(UTC) - datetime.fromisoformat(str(oldest).replace("Z", "+00:00"))).total_seconds()
    if pending and age is not None and age > LAG_WARN_S:
        hub = sync.get("postgres") or {}
        checks.append(Check("replication lag", "warn", f"{pending} writes pending, oldest {int(age)} s old"
                            + (f"; last error: {hub.get('last_error')}" if hub.get("last_error") else ""),
                            "check that Postgres is reachable from the daemon (statusd sync)"))  # fmt: skip
    else:
        checks.append(Check("replication lag", "ok", f"{pending} writes pending"))
    conflicts = int(sync.get("open_conflicts") or 0)
    if rejected or conflicts:
        detail = f"{conflicts} open conflicts, {rejected} queued ops refused so far"
        checks.append(Check("rejected operations", "warn", detail,
                            "review with statusd conflicts; resolve with the resolve_conflict tool"))  # fmt: skip
    else:
        checks.append(Check("rejected operations", "ok", "no open conflicts"))
    return checks


def check_mirror(settings: Settings, sync: dict[str, Any] | None) -> list[Check]:
    if not settings.mirror.enabled:
        return [Check("mirror", "skip", "disabled (mirror.enabled = false)")]
    state = ((sync or {}).get("mirror") or {}).get("state")
    if state == "not_running":
        return [Check("mirror", "skip", "this daemon does not run the markdown mirror")]
    path = settings.mirror.path
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        return [Check("mirror", "fail", f"{path.parent} is not a writable directory", "fix mirror.path")]
    if not path.exists():
        return [Check("mirror", "warn", f"{path} not written yet", "it appears once the daemon runs")]
    return [Check("mirror", "ok", f"{path}")]


def check_unit(config: Path | None) -> list[Check]:
    if config is None:
        return [Check("service", "skip", "no config file, so no unit to look for")]
    try:
        plan = service_units.plan_install(config, command=[])
    except service_units.ServiceError as exc:
        return [Check("service", "skip", str(exc))]
    argv = service_units.installed_exec_start(plan.path)
    if argv is None:
        return [Check("service", "warn", f"not installed ({plan.path})", "optional: statusd service install")]
    checks = [Check("service", "ok", f"{plan.path}")]
    exe = argv[0] if argv else ""
    wanted = ["run", "--config", str(config.expanduser().absolute())]
    if not exe or not os.access(exe, os.X_OK):
        checks.append(Check("service ExecStart", "fail", f"{exe or '(none)'} is not an executable",
                            "re-run statusd service install with the statusd you use now"))  # fmt: skip
    elif argv[-3:] != wanted:
        checks.append(Check("service ExecStart", "fail", f"starts {' '.join(argv)}, not this config",
                            "re-run statusd service install"))  # fmt: skip
    else:
        checks.append(Check("service ExecStart", "ok", " ".join(argv)))
    checks.append(_enabled(plan))
    return checks


def _enabled(plan: service_units.Plan) -> Check:
    if plan.manager == "launchd":
        cmd = ["launchctl", "print", f"gui/{os.getuid()}/{plan.name}"]
    else:
        cmd = ["systemctl", "--user", "is-enabled", plan.name]
    if shutil.which(cmd[0]) is None:
        return Check("service enabled", "warn", f"{cmd[0]} not found: cannot tell", "")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    answer = (done.stdout or done.stderr).strip().splitlines()[:1]
    if done.returncode == 0:
        return Check("service enabled", "ok", answer[0] if answer else "enabled")
    return Check("service enabled", "warn", f"{' '.join(cmd)}: {answer[0] if answer else done.returncode}",
                 " ".join(plan.commands[-1]))  # fmt: skip


def run(config: Path | None) -> list[Check]:
    from statusd.paths import discover_config_file

    config_file = config or discover_config_file()
    first, settings = check_config(config)
    checks = [first]
    if settings is None:
        return checks
    socket_checks, sync = check_socket(settings)
    checks += socket_checks
    checks += check_store(settings)
    checks += check_postgres(settings, sync)
    checks += check_mirror(settings, sync)
    checks += check_unit(config_file)
    return checks


def healthy(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"healthy": healthy(checks), "checks": [asdict(c) for c in checks]}
