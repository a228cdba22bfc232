"""``statusd doctor``: a healthy replicated setup passes; each broken part fails and says what to do."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp_support import statusd_cmd

from daemon_support import DaemonProcess
from statusd import service_units
from statusd.quick_client import QuickClient
from statusd.store import schema


def doctor(config: Path, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        statusd_cmd("doctor", "--json", "--config", str(config), *extra),
        capture_output=True, text=True, timeout=120, env=env, cwd="/",
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def wait_online(sock: Path, within: float = 60.0) -> None:
    """Poll until the daemon has reached Postgres (and so created the hub schema)."""
    deadline = time.monotonic() + within
    while True:
        with QuickClient(sock) as c:
            if (c.call("sync_status", {}).get("postgres") or {}).get("reachable"):
                return
        assert time.monotonic() < deadline, "the daemon never reached Postgres"
        time.sleep(0.05)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def test_a_healthy_replicated_setup_with_an_installed_unit(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    dsn, name = pg_schema
    d = DaemonProcess(tmp_path / "proj", extra_config=f'\n[postgres]\ndsn = "{dsn}"\nschema = "{name}"\n')
    d.start()
    try:
        wait_online(d.socket_path)
        command = [sys.executable, "-m", "statusd.cli"]
        unit = service_units.plan_install(d.config_path, manager="systemd", command=command)
        path = tmp_path / "xdg" / "systemd" / "user" / unit.name
        path.parent.mkdir(parents=True)
        path.write_text(unit.text)
        code, report = doctor(d.config_path, tmp_path)
    finally:
        d.stop()
        d.cleanup()
    checks = by_name(report)
    assert code == 0 and report["healthy"] is True, report
    for check in ("config", "daemon", "store integrity", "store schema", "postgres", "hub schema",
                  "replication lag", "rejected operations", "service", "service ExecStart"):  # fmt: skip
        assert checks[check]["status"] == "ok", checks[check]
    assert "fail" not in {c["status"] for c in report["checks"]}


def test_a_broken_setup_fails_each_part_and_says_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    store = root / ".statusd" / "store.sqlite3"
    store.parent.mkdir(parents=True)
    conn = sqlite3.connect(store)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'from_the_future', 'x')", (schema.LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    os.chmod(store.parent, 0o777)
    sock = tmp_path / "gone.sock"
    config = root / "statusd.toml"
    config.write_text(
        f'project = "broken"\n[socket]\npath = "{sock}"\n'
        '[postgres]\ndsn = "postgresql://u:s3cret-doctor@127.0.0.1:1/db"\n'
    )
    unit = service_units.plan_install(config, manager="systemd", command=["/nonexistent/statusd"])
    path = tmp_path / "xdg" / "systemd" / "user" / unit.name
    path.parent.mkdir(parents=True)
    path.write_text(unit.text)

    code, report = doctor(config, tmp_path)
    checks = by_name(report)
    assert code == 1 and report["healthy"] is False
    expected = {
        "socket": "statusd run",
        "store schema": "upgrade statusd",
        "store modes": "chmod go-w",
        "postgres": "postgres.dsn",
        "service ExecStart": "statusd service install",
    }
    for name, fix in expected.items():
        assert checks[name]["status"] == "fail", checks[name]
        assert fix in checks[name]["fix"], checks[name]
    assert "s3cret-doctor" not in json.dumps(report), "the Postgres password never reaches doctor's output"


def test_a_bad_config_is_one_failing_check_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "statusd.toml"
    config.write_text('project = "x"\n[sync]\nwrite_mode = "sometimes"\n')
    code, report = doctor(config, tmp_path)
    assert code == 1
    (check,) = report["checks"]
    assert check["name"] == "config" and check["status"] == "fail"
    assert "write_mode" in check["detail"]


def test_human_output_marks_failures_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "statusd.toml"
    config.write_text(f'project = "gone"\n[socket]\npath = "{tmp_path}/x.sock"\n')
    done = subprocess.run(statusd_cmd("doctor", "--config", str(config)), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})  # fmt: skip
    assert done.returncode == 1
    assert "FAIL socket" in done.stdout and "→ start the daemon" in done.stdout and "unhealthy" in done.stdout
