from __future__ import annotations

import os
import re
import socket
import tempfile
import tomllib
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from statusd.config import (
    Settings,
    default_socket_path,
    load_settings,
    machine_name,
    redact_dsn,
)
from statusd.errors import ConfigError
from statusd.paths import SUN_PATH_MAX

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"
SECRET = "hunter2-s3cret"
DSN = f"postgresql://alice:{SECRET}@db.example.com:5432/status?sslmode=require"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME with no user config, so only what a test writes is found."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    for name in list(os.environ):
        if name.startswith("STATUSD_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def project(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project directory that is also the current directory."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    yield root


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _error(config: Path | None, env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(config, env=env)
    return info.value


# ---- defaults and discovery ---------------------------------------------------------------


def test_defaults_without_any_file(project: Path, home: Path) -> None:
    s = load_settings(env=_env(home))
    assert s.root == project
    assert s.project == "proj"
    assert s.store.path == project / ".statusd/store.sqlite3"
    assert s.store.synchronous == "FULL"
    assert s.mirror.path == project / ".project_status.md"
    assert s.mirror.enabled is True
    assert s.mirror.debounce_ms == 300
    assert s.postgres.dsn is None
    assert s.replicated is False
    assert s.postgres.schema_name == "statusd"
    assert s.postgres.password_file is None
    assert s.sync.write_mode == "confirmed"
    assert s.sync.confirm_timeout_ms == 2000
    assert s.sync.pull_interval_s == 30.0
    assert s.archive.after_days == 365
    assert s.archive.schedule == "30 3 * * *"
    assert s.log.level == "INFO"
    assert s.postgres_dsn_redacted() is None
    assert s.postgres_password() is None


def test_defaults_read_the_process_environment_when_env_is_omitted(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATUSD_SYNC__WRITE_MODE", "async")
    assert load_settings().sync.write_mode == "async"


def test_settings_constructed_directly_match_loaded_defaults(project: Path, home: Path) -> None:
    assert Settings() == load_settings(env=_env(home))


def test_local_file_is_discovered(project: Path, home: Path) -> None:
    _write(project / "statusd.toml", 'project = "local"\n')
    _write(home / ".config/statusd/statusd.toml", 'project = "user"\n')
    assert load_settings(env=_env(home)).project == "local"


def test_user_file_under_home_config_is_discovered(project: Path, home: Path) -> None:
    user = _write(home / ".config/statusd/statusd.toml", 'project = "user"\n')
    s = load_settings(env=_env(home))
    assert s.project == "user"
    assert s.root == user.parent


def test_user_file_under_xdg_config_home_is_discovered(project: Path, home: Path, tmp_path: Path) -> None:
    _write(home / ".config/statusd/statusd.toml", 'project = "home"\n')
    _write(tmp_path / "xdg/statusd/statusd.toml", 'project = "xdg"\n')
    assert load_settings(env=_env(home, XDG_CONFIG_HOME=str(tmp_path / "xdg"))).project == "xdg"


def test_explicit_file_is_loaded(project: Path, home: Path, tmp_path: Path) -> None:
    config = _write(
        tmp_path / "elsewhere/custom.toml",
        """
project = "demo"
[store]
synchronous = "normal"
[mirror]
enabled = false
debounce_ms = 50
[postgres]
schema = "demo_status"
[sync]
write_mode = "async"
confirm_timeout_ms = 60000
pull_interval_s = 0.5
[archive]
after_days = 30
schedule = "0  4 * * 1-5"
[log]
level = "warning"
""",
    )
    s = load_settings(config, env=_env(home))
    assert s.root == config.parent
    assert s.project == "demo"
    assert s.store.synchronous == "NORMAL"
    assert (s.mirror.enabled, s.mirror.debounce_ms) == (False, 50)
    assert s.postgres.schema_name == "demo_status"
    assert (s.sync.write_mode, s.sync.confirm_timeout_ms, s.sync.pull_interval_s) == ("async", 60000, 0.5)
    assert (s.archive.after_days, s.archive.schedule) == (30, "0 4 * * 1-5")
    assert s.log.level == "WARNING"


def test_explicit_missing_file_is_an_error(project: Path, home: Path) -> None:
    missing = project / "nope.toml"
    err = _error(missing, _env(home))
    assert err.key == str(missing)
    assert "does not exist" in str(err)


# ---- environment ----------------------------------------------------------------------------


def test_environment_beats_the_file(project: Path, home: Path) -> None:
    config = _write(
        project / "statusd.toml",
        'project = "file"\n[sync]\nwrite_mode = "confirmed"\npull_interval_s = 5\n[log]\nlevel = "ERROR"\n',
    )
    env = _env(
        home,
        STATUSD_PROJECT="env",
        STATUSD_SYNC__WRITE_MODE="async",
        STATUSD_MIRROR__ENABLED="false",
        STATUSD_ARCHIVE__AFTER_DAYS="7",
        STATUSD_POSTGRES__DSN=DSN,
    )
    s = load_settings(config, env=env)
    assert s.project == "env"
    assert s.sync.write_mode == "async"
    assert s.sync.pull_interval_s == 5.0  # from the file, untouched by the environment
    assert s.log.level == "ERROR"
    assert s.mirror.enabled is False
    assert s.archive.after_days == 7
    assert s.replicated is True


def test_empty_dsn_override_means_standalone(project: Path, home: Path) -> None:
    _write(project / "statusd.toml", f'[postgres]\ndsn = "{DSN}"\n')
    assert load_settings(env=_env(home, STATUSD_POSTGRES__DSN="")).replicated is False


def test_non_config_statusd_variables_are_ignored(project: Path, home: Path) -> None:
    s = load_settings(env=_env(home, STATUSD_SOAK="1", STATUSD_TEST_PG_DSN=DSN))
    assert s.replicated is False


def test_env_error_names_the_variable(project: Path, home: Path) -> None:
    err = _error(None, _env(home, STATUSD_SYNC__CONFIRM_TIMEOUT_MS="soon"))
    assert err.key == "sync.confirm_timeout_ms"
    assert "STATUSD_SYNC__CONFIRM_TIMEOUT_MS" in str(err)


def test_env_unknown_section_is_an_error(project: Path, home: Path) -> None:
    err = _error(None, _env(home, STATUSD_SINC__WRITE_MODE="async"))
    assert err.key == "sinc"
    assert "STATUSD_SINC__WRITE_MODE" in str(err)
    assert "'sync'" in str(err)


# ---- validation errors name the dotted key ------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('project = "a/b"', "project"),
        ("project = 3", "project"),
        ('name = "x"', "name"),
        ('root = "/elsewhere"', "root"),
        ("sync = 3", "sync"),
        ("[sinc]\nwrite_mode = 'async'", "sinc"),
        ('[store]\npth = "x"', "store.pth"),
        ('[store]\nsynchronous = "OFF"', "store.synchronous"),
        ("[store]\npath = 5", "store.path"),
        ('[socket]\npaht = "x"', "socket.paht"),
        ('[mirror]\nenabled = "maybe"', "mirror.enabled"),
        ("[mirror]\ndebounce_ms = -1", "mirror.debounce_ms"),
        ('[mirror]\ndebounce_ms = "fast"', "mirror.debounce_ms"),
        ('[postgres]\nschema = "Bad-Name"', "postgres.schema"),
        ('[postgres]\nschema = "1st"', "postgres.schema"),
        ('[postgres]\nschema_name = "x"', "postgres.schema_name"),
        ('[postgres]\ndsn = "mysql://u@h/db"', "postgres.dsn"),
        ("[postgres]\ndsn = 5", "postgres.dsn"),
        ('[postgres]\npassword_file = "missing.txt"', "postgres.password_file"),
        ('[sync]\nwrite_mode = "eventually"', "sync.write_mode"),
        ("[sync]\nconfirm_timeout_ms = 0", "sync.confirm_timeout_ms"),
        ("[sync]\nconfirm_timeout_ms = 60001", "sync.confirm_timeout_ms"),
        ("[sync]\npull_interval_s = 0", "sync.pull_interval_s"),
        ("[archive]\nafter_days = 0", "archive.after_days"),
        ('[archive]\nschedule = "30 3 * *"', "archive.schedule"),
        ('[archive]\nschedule = "30 3 * * * *"', "archive.schedule"),
        ('[archive]\nschedule = "30 3 * * $"', "archive.schedule"),
        ('[archive]\nschedule = "61 25 * * *"', "archive.schedule"),
        ('[archive]\nschedule = "0 0 0 * *"', "archive.schedule"),
        ('[archive]\nschedule = "*/0 * * * *"', "archive.schedule"),
        ('[archive]\nschedule = "0 3 * 13 *"', "archive.schedule"),
        ('[archive]\nschedule = "0 3 * * 9"', "archive.schedule"),
        ('[archive]\nschedule = "5-2 * * * *"', "archive.schedule"),
        ('[postgres]\ndsn = "postgresql://u@db:99999/x"', "postgres.dsn"),
        ('[postgres]\ndsn = "postgresql://u@db:abc/x"', "postgres.dsn"),
        ('[postgres]\ndsn = "postgresql://u@db:\u00b9/x"', "postgres.dsn"),  # '¹'.isdigit() is true
        ('[archive]\nschedule = "\u00b9 3 * * *"', "archive.schedule"),
        ('[postgres]\ndsn = "postgresql://u@db/x?port=0"', "postgres.dsn"),
        ('[postgres]\ndsn = "postgresql://u@db/x?sslmode=sometimes"', "postgres.dsn"),
        ('[postgres]\ndsn = "postgresql://u@db/x?target_session_attrs=any-old"', "postgres.dsn"),
        (f'[socket]\npath = "/tmp/{"s" * 120}.sock"', "socket.path"),
        ('[log]\nlevel = "TRACE"', "log.level"),
        ("[log]\nlevel = 10", "log.level"),
    ],
)
def test_bad_value_names_its_key(project: Path, home: Path, toml: str, key: str) -> None:
    config = _write(project / "statusd.toml", toml + "\n")
    err = _error(config, _env(home))
    assert err.key == key
    assert f"'{key}'" in str(err)
    assert str(config) in str(err)


def test_unknown_key_suggests_the_nearest(project: Path, home: Path) -> None:
    config = _write(project / "statusd.toml", '[sync]\nwrite_mod = "async"\n')
    assert "did you mean 'write_mode'" in str(_error(config, _env(home)))


def test_several_problems_are_all_reported(project: Path, home: Path) -> None:
    config = _write(project / "statusd.toml", "[sync]\nwrite_mode = 1\n[log]\nlevel = 'x'\n")
    err = _error(config, _env(home))
    assert err.key == "sync.write_mode"
    assert "log.level" in str(err)


def test_bad_toml_names_the_file(project: Path, home: Path) -> None:
    config = _write(project / "statusd.toml", "[sync\nwrite_mode = \n")
    err = _error(config, _env(home))
    assert err.key == str(config)
    assert "not valid TOML" in str(err)


def test_root_without_a_name_needs_a_project(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert _error(None, _env(home)).key == "project"
    assert load_settings(env=_env(home, STATUSD_PROJECT="top")).project == "top"


# ---- paths ----------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_directory(project: Path, home: Path, tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    _write(conf_dir / "pw.txt", "pw\n")
    config = _write(
        conf_dir / "statusd.toml",
        """
[store]
path = "data/store.sqlite3"
[socket]
path = "run/s.sock"
[mirror]
path = "../docs/status.md"
[postgres]
password_file = "pw.txt"
""",
    )
    s = load_settings(config, env=_env(home))
    assert s.root == conf_dir
    assert s.project == "conf"
    assert s.store.path == conf_dir / "data/store.sqlite3"
    assert s.socket_path == conf_dir / "run/s.sock"
    assert s.mirror.path == conf_dir / "../docs/status.md"
    assert s.postgres.password_file == conf_dir / "pw.txt"


def test_absolute_and_home_paths_are_kept(project: Path, home: Path, tmp_path: Path) -> None:
    config = _write(
        project / "statusd.toml",
        f'[store]\npath = "{tmp_path / "abs.sqlite3"}"\n[mirror]\npath = "~/status.md"\n',
    )
    s = load_settings(config, env=_env(home))
    assert s.store.path == tmp_path / "abs.sqlite3"
    assert s.mirror.path == home / "status.md"


def test_socket_default_under_xdg_runtime_dir(project: Path, home: Path, tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    s = load_settings(env=_env(home, XDG_RUNTIME_DIR=str(runtime)))
    assert s.socket_path.parent == runtime / "statusd"
    assert re.fullmatch(r"proj-[0-9a-f]{8}\.sock", s.socket_path.name), s.socket_path
    assert s.socket.path == s.socket_path


def test_socket_default_without_xdg_runtime_dir(project: Path, home: Path) -> None:
    s = load_settings(env=_env(home, STATUSD_PROJECT="demo"))
    assert s.socket_path.parent == Path(tempfile.gettempdir()) / f"statusd-{os.getuid()}"
    assert re.fullmatch(r"demo-[0-9a-f]{8}\.sock", s.socket_path.name), s.socket_path
    # The XDG spec says a relative XDG_RUNTIME_DIR is to be ignored.
    assert default_socket_path("demo", project, {"XDG_RUNTIME_DIR": "relative/run"}) == s.socket_path


def test_projects_with_the_same_directory_name_get_different_default_sockets(tmp_path: Path, home: Path) -> None:
    """Issue 6 item 6: a/api and b/api both defaulted to <runtime>/statusd/api.sock."""
    env = _env(home, XDG_RUNTIME_DIR=str(tmp_path / "run"))
    first = load_settings(_write(tmp_path / "a" / "api" / "statusd.toml", ""), env=env)
    second = load_settings(_write(tmp_path / "b" / "api" / "statusd.toml", ""), env=env)
    assert first.project == second.project == "api"
    assert first.socket_path != second.socket_path
    assert first.socket_path.parent == second.socket_path.parent
    # Stable: the same directory (also reached through a symlink) always gets the same socket.
    (tmp_path / "link").symlink_to(tmp_path / "a")
    again = load_settings(tmp_path / "link" / "api" / "statusd.toml", env=env)
    assert again.socket_path == first.socket_path


def test_default_socket_name_shortens_the_project_name_to_fit(project: Path, home: Path) -> None:
    runtime = "/" + "r" * 60
    s = load_settings(env=_env(home, XDG_RUNTIME_DIR=runtime, STATUSD_PROJECT="p" * 90))
    assert len(os.fsencode(s.socket_path)) <= SUN_PATH_MAX
    assert s.socket_path.name.startswith("p") and s.socket_path.name.endswith(".sock")
    # A runtime dir so long that nothing fits: a start-up error naming the key that fixes it.
    err = _error(None, _env(home, XDG_RUNTIME_DIR="/" + "r" * 120))
    assert err.key == "socket.path" and "Set socket.path" in str(err)


# ---- secrets ----------------------------------------------------------------------------------


def _secret_free(text: str) -> None:
    assert SECRET not in text
    assert "hunter2" not in text


def test_password_never_shown(project: Path, home: Path) -> None:
    s = load_settings(env=_env(home, STATUSD_POSTGRES__DSN=DSN))
    assert s.postgres_password() == SECRET
    assert s.postgres_dsn() == DSN
    redacted = s.postgres_dsn_redacted()
    assert redacted == "postgresql://alice:***@db.example.com:5432/status?sslmode=require"
    for text in (str(s), repr(s), redacted, s.model_dump_json(), str(s.model_dump()), repr(s.postgres)):
        _secret_free(text)


@pytest.mark.parametrize(
    "dsn",
    [
        f"mysql://alice:{SECRET}@db/status",
        f"alice:{SECRET}@db/status",
        f"host=db user=alice password={SECRET}",
        f"postgresql://alice:{SECRET}@[::1/status",
    ],
)
def test_bad_dsn_error_does_not_echo_it(project: Path, home: Path, dsn: str) -> None:
    for source in ("env", "file"):
        if source == "env":
            config, env = None, _env(home, STATUSD_POSTGRES__DSN=dsn, STATUSD_LOG__LEVEL="nope")
        else:
            config = _write(project / "statusd.toml", f"[postgres]\ndsn = '{dsn}'\n[log]\nlevel = 'nope'\n")
            env = _env(home)
        err = _error(config, env)
        assert err.key == "postgres.dsn"
        _secret_free(str(err))
        _secret_free(repr(err))
        _secret_free(str(err.details))
        _secret_free("".join(traceback.format_exception(err)))


def test_redact_dsn_variants() -> None:
    assert redact_dsn("postgresql://db/status") == "postgresql://db/status"
    assert redact_dsn("postgresql://alice@db/status") == "postgresql://alice@db/status"
    assert redact_dsn("postgres://a:p%40ss@h1:5432,h2:5432/db") == "postgres://a:***@h1:5432,h2:5432/db"
    assert redact_dsn("postgresql://a:p@ss@db/x") == "postgresql://a:***@db/x"
    assert redact_dsn("postgresql:///db?host=/run/pg&password=pw") == "postgresql:///db?host=/run/pg&password=***"


def test_password_sources_in_order(project: Path, home: Path) -> None:
    _write(project / "pw.txt", "  from-file \n")
    file_only = load_settings(
        env=_env(home, STATUSD_POSTGRES__DSN="postgresql://alice@db/x", STATUSD_POSTGRES__PASSWORD_FILE="pw.txt")
    )
    assert file_only.postgres_password() == "from-file"
    decoded = load_settings(
        env=_env(home, STATUSD_POSTGRES__DSN="postgresql://a:p%40ss@db/x", STATUSD_POSTGRES__PASSWORD_FILE="pw.txt")
    )
    assert decoded.postgres_password() == "p@ss"
    query = load_settings(env=_env(home, STATUSD_POSTGRES__DSN="postgresql://a@db/x?password=q"))
    assert query.postgres_password() == "q"
    assert load_settings(env=_env(home, STATUSD_POSTGRES__DSN="postgresql://a@db/x")).postgres_password() is None
    _write(project / "empty.txt", "\n")
    empty = load_settings(
        env=_env(home, STATUSD_POSTGRES__DSN="postgresql://a@db/x", STATUSD_POSTGRES__PASSWORD_FILE="empty.txt")
    )
    assert empty.postgres_password() is None


def test_machine_name_is_the_hostname() -> None:
    assert machine_name() == socket.gethostname()


# ---- config.example.toml stays in step with the model ------------------------------------------


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if model is Settings and name == "root":
            continue  # set by the loader, not a config key
        key = prefix + (field.alias or name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _model_keys(annotation, key + ".")
        else:
            keys.add(key)
    return keys


_SECTION = re.compile(r"^\[([a-z_]+)\]\s*$")
_KEY = re.compile(r"^(#\s*)?([a-z_]+)\s*=")


def _example_keys(text: str) -> tuple[set[str], set[str]]:
    """Return (uncommented keys, commented-out keys) as dotted names."""
    plain: set[str] = set()
    commented: set[str] = set()
    section = ""
    for line in text.splitlines():
        if m := _SECTION.match(line):
            section = m.group(1) + "."
        elif m := _KEY.match(line):
            (commented if m.group(1) else plain).add(section + m.group(2))
    return plain, commented


def test_example_documents_every_key() -> None:
    plain, commented = _example_keys(EXAMPLE.read_text(encoding="utf-8"))
    assert not plain & commented
    assert plain | commented == _model_keys(Settings)
    assert commented == {"project", "socket.path", "postgres.dsn", "postgres.password_file"}


def test_example_uncommented_keys_are_the_defaults(project: Path, home: Path) -> None:
    example = _write(project / "example.toml", EXAMPLE.read_text(encoding="utf-8"))
    env = _env(home, XDG_RUNTIME_DIR=str(project / "run"))
    assert load_settings(example, env=env) == load_settings(env=env)
    plain, _ = _example_keys(example.read_text(encoding="utf-8"))
    parsed = tomllib.loads(example.read_text(encoding="utf-8"))
    assert {f"{s}.{k}" for s, table in parsed.items() for k in table} == plain


def test_example_commented_values_are_valid(project: Path, home: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = re.sub(r"^#\s*([a-z_]+\s*=)", r"\1", text, flags=re.MULTILINE)
    _write(home / ".config/statusd/pgpass.txt", "pw\n")
    example = _write(project / "example.toml", uncommented)
    s = load_settings(example, env=_env(home))
    assert s.project == "myproject"
    assert s.replicated is True
    assert s.postgres_password() == "pw"
