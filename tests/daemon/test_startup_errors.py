"""Issue 6 item 7, SPEC §10: bad settings stop ``statusd run`` at once with exit 78 and one line
naming the key, never a traceback and never endless retries.

Before: a socket path over the platform limit was a 94-line traceback, ``61 25 * * *`` a 126-line
one, and a DSN with a bad port or sslmode was retried forever (port 99999 silently became 34463).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mcp_support import statusd_cmd

SECRET = "pw-never-shown"


def run_daemon(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "statusd.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATUSD_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    return subprocess.run(
        statusd_cmd("run", "--config", str(project / "statusd.toml")),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("config", "key", "says"),
    [
        (f'[socket]\npath = "/tmp/{"deep/" * 25}statusd.sock"\n', "socket.path", "Unix socket paths"),
        ('[archive]\nschedule = "61 25 * * *"\n', "archive.schedule", "61 is outside 0-59"),
        ('[archive]\nschedule = "0 3 * * 9"\n', "archive.schedule", "outside 0-6"),
        (f'[postgres]\ndsn = "postgresql://u:{SECRET}@localhost:99999/db"\n', "postgres.dsn", "port '99999'"),
        (f'[postgres]\ndsn = "postgresql://u:{SECRET}@localhost/db?sslmode=sure"\n', "postgres.dsn", "sslmode 'sure'"),
    ],
)
def test_a_bad_setting_exits_78_naming_its_key(tmp_path: Path, config: str, key: str, says: str) -> None:
    done = run_daemon(tmp_path, config)
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"'{key}'" in line and says in line, line
    assert SECRET not in line
    assert not (tmp_path / "project" / ".statusd").exists()  # refused before touching the store


def test_the_bridge_names_socket_path_when_it_is_too_long(tmp_path: Path) -> None:
    too_long = tmp_path / ("s" * 120 + ".sock")
    done = subprocess.run(statusd_cmd("mcp", "--socket", str(too_long)), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 78 and done.stdout == b""
    assert "'socket.path'" in done.stderr.decode() and "Traceback" not in done.stderr.decode()
