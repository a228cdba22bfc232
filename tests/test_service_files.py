from __future__ import annotations

import configparser
import plistlib
import string
from pathlib import Path
from typing import Any

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[1] / "systemd"
UNIT = SYSTEMD_DIR / "statusd@.service"
PLIST = SYSTEMD_DIR / "com.statusd.agent.plist"


class _UnitParser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # unit keys are case-sensitive


@pytest.fixture(scope="module")
def unit() -> configparser.RawConfigParser:
    parser = _UnitParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def plist_template() -> str:
    return PLIST.read_text(encoding="utf-8")


def test_unit_is_a_notify_service_with_watchdog(unit: configparser.RawConfigParser) -> None:
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "10"


def test_unit_runs_statusd_with_the_instance_config(unit: configparser.RawConfigParser) -> None:
    argv = unit["Service"]["ExecStart"].split()
    assert argv[0] == "%h/.local/bin/statusd"
    assert argv[1:3] == ["run", "--config"]
    # %f is "/" + the unescaped instance name: the instance is the config file's path.
    assert argv[3] == "%f"


def test_unit_is_installable_for_the_user_session(unit: configparser.RawConfigParser) -> None:
    assert unit["Install"]["WantedBy"] == "default.target"
    assert "Description" in unit["Unit"]


def test_plist_template_parses_and_keeps_the_agent_alive(plist_template: str) -> None:
    agent: dict[str, Any] = plistlib.loads(plist_template.encode("utf-8"))
    assert agent["RunAtLoad"] is True
    # Restart on crash, not after a clean exit, like Restart=on-failure.
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProgramArguments"] == ["{statusd_bin}", "run", "--config", "{config_path}"]
    assert agent["StandardErrorPath"] == "{log_path}"
    assert agent["Label"] == "{label}"


def test_plist_template_fills_in_to_a_valid_plist(plist_template: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(plist_template) if name}
    assert fields == {"label", "statusd_bin", "config_path", "log_path"}
    filled = plist_template.format(
        label="com.statusd.agent.demo",
        statusd_bin="/Users/me/.local/bin/statusd",
        config_path="/Users/me/demo/statusd.toml",
        log_path="/Users/me/Library/Logs/statusd-demo.log",
    )
    agent = plistlib.loads(filled.encode("utf-8"))
    assert agent["Label"] == "com.statusd.agent.demo"
    assert agent["ProgramArguments"] == [
        "/Users/me/.local/bin/statusd",
        "run",
        "--config",
        "/Users/me/demo/statusd.toml",
    ]
    assert agent["StandardErrorPath"] == "/Users/me/Library/Logs/statusd-demo.log"
