"""``statusd service install|uninstall``: the generated systemd unit and launchd plist (SPEC §10)."""

from __future__ import annotations

import configparser
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from statusd import service_units as su

STATUSD_SCRIPT = Path(sys.executable).parent / "statusd"


class _UnitParser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # unit keys are case-sensitive


def parse_unit(text: str) -> configparser.RawConfigParser:
    parser = _UnitParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "my proj"
    root.mkdir()
    (root / "statusd.toml").write_text(f'project = "demo"\n[socket]\npath = "{tmp_path}/d.sock"\n')
    return root


def cli(*args: str, cwd: Path, env: dict[str, str], module: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "statusd.cli"] if module else [str(STATUSD_SCRIPT)]
    return subprocess.run([*argv, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def isolated_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"}


def test_unit_is_a_notify_service_that_does_not_restart_a_bad_config(project: Path) -> None:
    unit = parse_unit(su.render_systemd("demo", project / "statusd.toml", ["/opt/sd/bin/statusd"]))
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "78"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "10"
    assert service["WorkingDirectory"] == str(project)
    assert unit["Install"]["WantedBy"] == "default.target"


def test_exec_start_quotes_spaces_and_escapes_specifiers(tmp_path: Path) -> None:
    config = tmp_path / "a dir" / "100%" / "statusd.toml"
    config.parent.mkdir(parents=True)
    config.write_text('project = "demo"\n')
    command = ["/opt/my env/bin/python", "-m", "statusd.cli"]
    unit = tmp_path / "u.service"
    unit.write_text(su.render_systemd("demo", config, command))
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    assert "100%%" in line and '"/opt/my env/bin/python"' in line
    assert su.installed_exec_start(unit) == [*command, "run", "--config", str(config)]


def test_the_command_is_the_statusd_that_runs_the_install(tmp_path: Path) -> None:
    assert su.statusd_command(str(STATUSD_SCRIPT), sys.executable) == [str(STATUSD_SCRIPT)]
    cli_py = Path(su.__file__).with_name("cli.py")
    assert su.statusd_command(str(cli_py), "/x/venv/bin/python") == ["/x/venv/bin/python", "-m", "statusd.cli"]


def test_dry_run_prints_the_unit_for_the_running_statusd_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    for module, expected in ((False, [str(STATUSD_SCRIPT)]), (True, [sys.executable, "-m", "statusd.cli"])):
        run = cli("service", "install", "--dry-run", cwd=project, env=env, module=module)
        assert run.returncode == 0, run.stderr
        unit_path = tmp_path / "xdg" / "systemd" / "user" / "statusd-demo.service"
        assert f"# {unit_path}" in run.stdout
        assert "would run: systemctl --user enable --now statusd-demo.service" in run.stdout
        text = run.stdout.split("\n", 1)[1].split("would run:")[0]
        written = tmp_path / "printed.service"
        written.write_text(text)
        assert su.installed_exec_start(written) == [*expected, "run", "--config", str(project / "statusd.toml")]
        assert not unit_path.exists(), "--dry-run changed nothing"


def test_a_bad_config_is_refused_before_anything_is_written(project: Path, tmp_path: Path) -> None:
    (project / "statusd.toml").write_text('project = "demo"\nbogus = 1\n')
    run = cli("service", "install", cwd=project, env=isolated_env(tmp_path))
    assert run.returncode == 78
    assert "bad configuration" in run.stderr and "bogus" in run.stderr
    assert not (tmp_path / "xdg").exists()


def _user_systemd() -> str | None:
    """Why a user service manager is unavailable here, or None when there is one."""
    if shutil.which("systemctl") is None:
        return "systemctl is not installed"
    probe = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"no user systemd manager (systemctl --user: {probe.stderr.strip() or probe.returncode})"
    return None


def test_install_writes_the_unit_and_uninstall_removes_it(project: Path, tmp_path: Path) -> None:
    reason = _user_systemd()
    if reason is None:
        pytest.skip("a user systemd manager is running: this test does not enable a real unit on the host")
    env = isolated_env(tmp_path)
    unit_path = tmp_path / "xdg" / "systemd" / "user" / "statusd-demo.service"
    run = cli("service", "install", cwd=project, env=env)
    # Without a user manager the unit is written and the command says exactly what is left to do.
    assert run.returncode == 1, run.stdout
    assert f"wrote {unit_path}" in run.stderr
    assert "systemctl --user daemon-reload && systemctl --user enable --now statusd-demo.service" in run.stderr
    assert su.installed_exec_start(unit_path) == [str(STATUSD_SCRIPT), "run", "--config", str(project / "statusd.toml")]
    run = cli("service", "uninstall", cwd=project, env=env)
    assert run.returncode == 0, run.stderr
    assert f"removed {unit_path}" in run.stdout
    assert not unit_path.exists()


def test_enable_with_a_real_user_systemd() -> None:
    reason = _user_systemd()
    if reason is not None:
        pytest.skip(f"cannot enable a unit on this machine: {reason}; the file-content tests still ran")
    pytest.skip("a user systemd is available, but enabling a real unit from the test suite would touch the host")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_generated_unit_passes_systemd_analyze_verify(project: Path, tmp_path: Path) -> None:
    plan = su.plan_install(project / "statusd.toml", manager="systemd", command=[str(STATUSD_SCRIPT)])
    unit = tmp_path / plan.name
    unit.write_text(plan.text)
    ok = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    # The check can fail: a unit naming a statusd that does not exist is rejected.
    bad = tmp_path / "statusd-bad.service"
    bad.write_text(su.render_systemd("bad", project / "statusd.toml", ["/nonexistent/statusd"]))
    nok = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert nok.returncode != 0 and "/nonexistent/statusd" in nok.stderr


def test_launchd_plist_keeps_the_agent_alive_and_names_the_config(project: Path) -> None:
    plan = su.plan_install(project / "statusd.toml", manager="launchd", command=[str(STATUSD_SCRIPT)])
    agent = plistlib.loads(plan.text.encode())
    assert plan.name == agent["Label"] == "com.statusd.demo"
    assert plan.path.name == "com.statusd.demo.plist"
    assert agent["ProgramArguments"] == [str(STATUSD_SCRIPT), "run", "--config", str(project / "statusd.toml")]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["WorkingDirectory"] == str(project)
    assert plan.commands[-1][:2] == ["launchctl", "bootstrap"]


@pytest.mark.skipif(shutil.which("plutil") is None, reason="plutil is macOS-only and not installed here")
def test_generated_plist_passes_plutil_lint(project: Path, tmp_path: Path) -> None:
    plan = su.plan_install(project / "statusd.toml", manager="launchd", command=[str(STATUSD_SCRIPT)])
    path = tmp_path / "agent.plist"
    path.write_text(plan.text)
    lint = subprocess.run(["plutil", "-lint", str(path)], capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
