"""``statusd service install|uninstall``: a systemd user unit (Linux) or a launchd agent (macOS).

One unit per project (``statusd-<project>.service`` / ``com.statusd.<project>``), starting the very
statusd that ran the install command with the project's config file. Rendering is pure; only
:func:`apply` touches the file system and the service manager. Standard library only: the CLI's
fast path and ``statusd doctor`` import this module.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from statusd.errors import StatusdError

WATCHDOG_S = 30
STOP_TIMEOUT_S = 10
EX_CONFIG = 78  # sysexits.h: a bad configuration is not fixed by restarting


class ServiceError(StatusdError):
    """The unit could not be written or the service manager refused; the message says what to do."""


def statusd_command(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The command that starts this same statusd: its console script, else ``python -m statusd.cli``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    # Absolute but not symlink-resolved: a venv's python is a symlink, and resolving it loses the venv.
    script = os.path.abspath(argv0) if argv0 else ""
    if os.path.basename(script).startswith("statusd") and os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [os.path.abspath(executable), "-m", "statusd.cli"]


def project_name(config_path: Path) -> str:
    """The ``project`` of the config file, as the daemon computes it (env override, else the directory name)."""
    with open(config_path, "rb") as fh:
        data = tomllib.load(fh)
    return str(os.environ.get("STATUSD_PROJECT") or data.get("project") or config_path.parent.name)


@dataclass
class Plan:
    """What install (or uninstall) writes and runs; ``--dry-run`` prints it instead."""

    manager: str  # "systemd" or "launchd"
    name: str  # unit name or launchd label
    path: Path  # where the unit file / plist lives
    text: str  # its content ("" for uninstall)
    commands: list[list[str]] = field(default_factory=list)
    exec_start: list[str] = field(default_factory=list)


def _systemd_quote(word: str) -> str:
    # Unit files expand %specifiers and $VARIABLES; a path may contain either, or spaces.
    word = word.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'\\;" for c in word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_systemd(project: str, config_path: Path, command: list[str]) -> str:
    exec_start = " ".join(_systemd_quote(w) for w in [*command, "run", "--config", str(config_path)])
    workdir = str(config_path.parent).replace("%", "%%")
    return f"""\
# statusd daemon for project {project!r}; written by `statusd service install`.
# Re-run that command after moving the project or reinstalling statusd (ExecStart is absolute).

[Unit]
Description=statusd project status daemon ({project})

[Service]
Type=notify
# Only the daemon itself may report READY/STATUS/WATCHDOG, not processes it spawns.
NotifyAccess=main
ExecStart={exec_start}
WorkingDirectory={workdir}
# READY=1 comes once the store is open and the socket listens; never waits for Postgres.
WatchdogSec={WATCHDOG_S}
Restart=on-failure
RestartSec=2
# Exit 78 (EX_CONFIG) is a bad configuration or a store from a newer statusd: restarting cannot help.
RestartPreventExitStatus={EX_CONFIG}
# SIGTERM: stop accepting, finish in-flight calls, flush the mirror, close the store, exit 0.
KillSignal=SIGTERM
TimeoutStopSec={STOP_TIMEOUT_S}
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=default.target
"""


def render_launchd(label: str, config_path: Path, command: list[str], log_path: Path) -> str:
    agent = {
        "Label": label,
        "ProgramArguments": [*command, "run", "--config", str(config_path)],
        "WorkingDirectory": str(config_path.parent),
        "RunAtLoad": True,
        # Restart after a crash, not after a clean exit (systemd's Restart=on-failure).
        "KeepAlive": {"SuccessfulExit": False},
        # SIGTERM first, SIGKILL after this many seconds (systemd's TimeoutStopSec).
        "ExitTimeOut": STOP_TIMEOUT_S,
        # launchd has no RestartPreventExitStatus: throttle restarts so a bad config does not spin.
        "ThrottleInterval": 30,
        "StandardErrorPath": str(log_path),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    }
    return plistlib.dumps(agent).decode()


def default_manager() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def systemd_unit_path(project: str, env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / f"statusd-{project}.service"


def launchd_plist_path(project: str) -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"com.statusd.{project}.plist"


def plan_install(config_path: Path, *, manager: str | None = None, command: list[str] | None = None) -> Plan:
    config_path = config_path.expanduser().absolute()
    if not config_path.is_file():
        raise ServiceError(f"{config_path} does not exist: copy config.example.toml to statusd.toml first")
    project = project_name(config_path)
    command = statusd_command() if command is None else command
    manager = manager or default_manager()
    if manager == "launchd":
        label = f"com.statusd.{project}"
        path = launchd_plist_path(project)
        log_path = Path.home() / "Library" / "Logs" / f"statusd-{project}.log"
        domain = f"gui/{os.getuid()}"
        return Plan(
            manager, label, path, render_launchd(label, config_path, command, log_path),
            [["launchctl", "bootout", f"{domain}/{label}"], ["launchctl", "bootstrap", domain, str(path)]],
            [*command, "run", "--config", str(config_path)],
        )  # fmt: skip
    name = f"statusd-{project}.service"
    return Plan(
        "systemd", name, systemd_unit_path(project), render_systemd(project, config_path, command),
        [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", name]],
        [*command, "run", "--config", str(config_path)],
    )  # fmt: skip


def plan_uninstall(config_path: Path, *, manager: str | None = None) -> Plan:
    config_path = config_path.expanduser().absolute()
    project = project_name(config_path) if config_path.is_file() else config_path.parent.name
    manager = manager or default_manager()
    if manager == "launchd":
        label = f"com.statusd.{project}"
        bootout = ["launchctl", "bootout", f"gui/{os.getuid()}/{label}"]
        return Plan(manager, label, launchd_plist_path(project), "", [bootout])
    name = f"statusd-{project}.service"
    return Plan(
        "systemd", name, systemd_unit_path(project), "",
        [["systemctl", "--user", "disable", "--now", name], ["systemctl", "--user", "daemon-reload"]],
    )  # fmt: skip


def _run(cmd: list[str]) -> tuple[bool, str]:
    if shutil.which(cmd[0]) is None:
        return False, f"{cmd[0]} not found"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def install(plan: Plan) -> list[str]:
    """Write the unit and enable it; return notes. Raises ServiceError saying what is left to do."""
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.path.with_name(plan.path.name + ".tmp")
    tmp.write_text(plan.text)
    os.replace(tmp, plan.path)
    notes = [f"wrote {plan.path}"]
    for i, cmd in enumerate(plan.commands):
        ok, output = _run(cmd)
        if not ok and not (plan.manager == "launchd" and i == 0):  # bootout of a not-loaded agent fails
            rest = " && ".join(" ".join(c) for c in plan.commands[i:])
            raise ServiceError(
                f"wrote {plan.path}, but `{' '.join(cmd)}` failed: {output or 'no output'}. "
                f"In a login session with a user service manager, run: {rest}"
            )
    notes.append(f"enabled and started {plan.name}")
    return notes


def uninstall(plan: Plan) -> list[str]:
    notes = []
    for cmd in plan.commands:
        ok, output = _run(cmd)
        if not ok:
            notes.append(f"`{' '.join(cmd)}` failed: {output or 'no output'} (continuing)")
    if plan.path.exists():
        plan.path.unlink()
        notes.append(f"removed {plan.path}")
    else:
        notes.append(f"{plan.path} was not installed")
    return notes


def installed_exec_start(path: Path) -> list[str] | None:
    """The command an installed unit or plist starts (for doctor), or None if there is none."""
    if not path.is_file():
        return None
    if path.suffix == ".plist":
        with open(path, "rb") as fh:
            return [str(a) for a in plistlib.load(fh).get("ProgramArguments", [])]
    import shlex

    for line in path.read_text().splitlines():
        if line.startswith("ExecStart="):
            return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line.split("=", 1)[1])]
    return []
