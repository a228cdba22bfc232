"""Configuration: one TOML file overridden by ``STATUSD_*`` environment variables (SPEC §10).

Precedence, lowest first: field defaults, the TOML file, the environment. ``load_settings`` finds
the file, merges the environment and turns every problem into ``ConfigError(dotted_key, problem)``.

The models are plain pydantic models, and this module reads the environment itself instead of
subclassing ``pydantic_settings.BaseSettings``: importing pydantic-settings costs ~125 ms, and the
``statusd mcp`` bridge loads this module to find the socket yet must answer within 150 ms (§4.3).
Reading an injectable mapping also keeps precedence exact and tests free of ``os.environ``.

Relative paths resolve against ``Settings.root``: the directory holding the config file when one
was loaded, else the current directory. The Postgres password never leaves ``SecretStr`` except
through ``Settings.postgres_password()``.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from statusd.errors import ConfigError
from statusd.paths import DEFAULT_STORE_PATH, default_socket_path, discover_config_file, socket_path_problem

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_PREFIX",
    "ArchiveSection",
    "LogSection",
    "MirrorSection",
    "PostgresSection",
    "Settings",
    "SocketSection",
    "StoreSection",
    "SyncSection",
    "default_socket_path",
    "discover_config_file",
    "load_settings",
    "machine_name",
    "redact_dsn",
]

CONFIG_FILE_NAME = "statusd.toml"
ENV_PREFIX = "STATUSD_"
_NESTED = "__"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?#LW-]+")
_DSN_SCHEMES = ("postgres", "postgresql")
_QUERY_PASSWORD = re.compile(r"(^|&)password=[^&]*")


class _SettingsError(ConfigError):
    """A cross-field problem found while validating; the loader adds where the key came from."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.problem = problem


class _Section(BaseModel):
    # A misspelt key must fail at start-up, not silently fall back to its default.
    model_config = ConfigDict(extra="forbid")


class StoreSection(_Section):
    path: Path = Path(DEFAULT_STORE_PATH)
    synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class SocketSection(_Section):
    # None until Settings fills in the per-user runtime-dir default.
    path: Path | None = None


class MirrorSection(_Section):
    path: Path = Path(".project_status.md")
    enabled: bool = True
    debounce_ms: int = Field(default=300, ge=0)


class PostgresSection(_Section):
    # `schema` would shadow BaseModel.schema(), so the attribute is `schema_name`; the key is `schema`.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)

    dsn: SecretStr | None = None
    schema_name: str = Field(default="statusd", alias="schema")
    password_file: Path | None = None

    @field_validator("dsn", mode="before")
    @classmethod
    def _check_dsn(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        if not raw.strip():
            return None  # an empty override means standalone mode
        # Messages here must never include the DSN: it may carry the password.
        parts = urlsplit(raw.strip())
        if parts.scheme not in _DSN_SCHEMES or not (parts.netloc or parts.path):
            raise ValueError("must be a postgresql://user@host:port/dbname URI")
        _check_dsn_parameters(parts.netloc, parts.query)
        return SecretStr(raw.strip())

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("must be a lower-case SQL identifier matching [a-z_][a-z0-9_]*")
        return value


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")


def _check_dsn_parameters(netloc: str, query: str) -> None:
    """Refuse what the driver would turn into endless reconnects (or silently wrap: port 99999).

    Messages may name a port or a parameter value but never the DSN itself (it may hold the password).
    """
    ports = []
    for host in netloc.rpartition("@")[2].split(","):
        _, bracket, rest = host.rpartition("]")  # [::1]:5432
        _, colon, port = (rest if bracket else host).rpartition(":")
        if colon:
            ports.append(port)
    params = dict(parse_qsl(query, keep_blank_values=True))
    ports += params["port"].split(",") if "port" in params else []
    for port in ports:
        if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"port {port[:20]!r} is not a number from 1 to 65535")
    if "sslmode" in params and params["sslmode"] not in _SSLMODES:
        raise ValueError(f"sslmode {params['sslmode'][:30]!r} is not one of {', '.join(_SSLMODES)}")
    attrs = params.get("target_session_attrs")
    if attrs is not None and attrs not in _SESSION_ATTRS:
        raise ValueError(f"target_session_attrs {attrs[:30]!r} is not one of {', '.join(_SESSION_ATTRS)}")


class SyncSection(_Section):
    write_mode: Literal["confirmed", "async"] = "confirmed"
    confirm_timeout_ms: int = Field(default=2000, ge=1, le=60000)
    pull_interval_s: float = Field(default=30.0, gt=0)
    max_backoff_s: float = Field(default=10.0, gt=0, le=3600)
    heartbeat_s: float = Field(default=5.0, gt=0, le=3600)
    replay_retention_days: int = Field(default=90, ge=1, le=3650)


class ArchiveSection(_Section):
    after_days: int = Field(default=365, ge=1)
    schedule: str = "30 3 * * *"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if value == "local":
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            hint = "use an IANA name such as 'UTC' or 'Europe/Berlin', or 'local'"
            raise ValueError(f"unknown time zone {value!r}; {hint}") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(
                f"must be a 5-field cron expression (minute hour day month weekday), got {len(fields)} fields"
            )
        if not all(_CRON_FIELD.fullmatch(f) for f in fields):
            raise ValueError("cron fields may contain only digits, names, and * / , - ?")
        for field, (name, low, high, names) in zip(fields, _CRON_RANGES, strict=True):
            _check_cron_field(field, name, low, high, names)
        return " ".join(fields)


_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun"), start=1)} | {
    m: n for n, m in enumerate(("jul", "aug", "sep", "oct", "nov", "dec"), start=7)
}
# APScheduler 3 numbers weekdays from Monday = 0 (crontab: Sunday = 0).
_WEEKDAYS = {d: n for n, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
_CRON_RANGES: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _WEEKDAYS),
)


def _check_cron_field(field: str, name: str, low: int, high: int, names: dict[str, int]) -> None:
    """Refuse values outside the field's range (``61 25 * * *``) before the scheduler would crash on them."""

    def value(text: str) -> int:
        number = names.get(text.lower()) if not (text.isascii() and text.isdigit()) else int(text)
        if number is None:
            raise ValueError(f"{name} field {field!r}: {text!r} is not a number or a known name")
        if not low <= number <= high:
            raise ValueError(f"{name} field {field!r}: {number} is outside {low}-{high}")
        return number

    for item in field.split(","):
        base, slash, step = item.partition("/")
        if slash and not (step.isascii() and step.isdigit() and 1 <= int(step) <= high - low):
            raise ValueError(f"{name} field {field!r}: the step must be a number from 1 to {high - low}")
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        if not first or (dash and not last):
            raise ValueError(f"{name} field {field!r}: {item!r} is not a value, a range a-b, or *")
        if dash and value(first) > value(last):
            raise ValueError(f"{name} field {field!r}: the range {base!r} runs backwards")
        value(first)


class LogSection(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseModel):
    """The validated configuration of one project's daemon."""

    model_config = ConfigDict(extra="forbid")

    # Not a config key: load_settings sets it from the config file's location.
    root: Path = Field(default_factory=Path.cwd)
    # Empty means "the basename of root", filled in by validation.
    project: str = ""
    store: StoreSection = Field(default_factory=StoreSection)
    socket: SocketSection = Field(default_factory=SocketSection)
    mirror: MirrorSection = Field(default_factory=MirrorSection)
    postgres: PostgresSection = Field(default_factory=PostgresSection)
    sync: SyncSection = Field(default_factory=SyncSection)
    archive: ArchiveSection = Field(default_factory=ArchiveSection)
    log: LogSection = Field(default_factory=LogSection)

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        # The name becomes a socket file name.
        if value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
            raise ValueError("must be a plain name (no path separators), it names the socket file")
        return value

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Self:
        self.root = self.root.expanduser().absolute()
        if not self.project:
            if not self.root.name:
                raise _SettingsError("project", f"the project root {self.root} has no name; set project")
            self.project = self.root.name
        # Copy rather than mutate: pydantic keeps section instances passed in by the caller.
        self.store = self.store.model_copy(update={"path": self._under_root(self.store.path)})
        self.mirror = self.mirror.model_copy(update={"path": self._under_root(self.mirror.path)})
        env = info.context.get("env") if isinstance(info.context, Mapping) else None
        sock = self.socket.path
        sock = default_socket_path(self.project, self.root, env) if sock is None else self._under_root(sock)
        problem = socket_path_problem(sock)
        if problem is not None:
            raise _SettingsError("socket.path", problem)
        self.socket = self.socket.model_copy(update={"path": sock})
        if self.postgres.password_file is not None:
            pw_file = self._under_root(self.postgres.password_file)
            if not pw_file.is_file() or not os.access(pw_file, os.R_OK):
                raise _SettingsError("postgres.password_file", f"{pw_file} is not a readable file")
            self.postgres = self.postgres.model_copy(update={"password_file": pw_file})
        return self

    def _under_root(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def socket_path(self) -> Path:
        """Return the socket path (always set after validation)."""
        return self.socket.path or default_socket_path(self.project, self.root)

    @property
    def replicated(self) -> bool:
        """Return whether a Postgres DSN is configured (replicated mode)."""
        return self.postgres.dsn is not None

    def postgres_dsn(self) -> str | None:
        """Return the DSN with its password, for the Postgres driver only."""
        return None if self.postgres.dsn is None else self.postgres.dsn.get_secret_value()

    def postgres_dsn_redacted(self) -> str | None:
        """Return the DSN with any password replaced by ``***``, safe for logs and status."""
        dsn = self.postgres_dsn()
        return None if dsn is None else redact_dsn(dsn)

    def postgres_password(self) -> str | None:
        """Return the password from the DSN, else from a non-empty ``password_file``, else None.

        None leaves ``PGPASSWORD`` and ``~/.pgpass`` to asyncpg.
        """
        dsn = self.postgres_dsn()
        if dsn is not None:
            password = _dsn_password(dsn)
            if password is not None:
                return password
        if self.postgres.password_file is not None:
            try:
                content = self.postgres.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    "postgres.password_file", f"cannot read {self.postgres.password_file}: {exc.strerror}"
                ) from None
            # An empty file must not turn into an empty password and hide PGPASSWORD/.pgpass.
            return content or None
        return None


def machine_name() -> str:
    """Return this machine's name, recorded as the origin of every change."""
    return socket.gethostname()


def redact_dsn(dsn: str) -> str:
    """Return ``dsn`` with the password (userinfo or ``password=`` parameter) replaced by ``***``."""
    parts = urlsplit(dsn)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    netloc = f"{userinfo}@{hosts}" if at else hosts
    # Rebuilt by hand: urlunsplit drops the "//" of an empty netloc (postgresql:///db?host=/run).
    out = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query:
        out += "?" + _QUERY_PASSWORD.sub(r"\1password=***", parts.query)
    if parts.fragment:
        out += "#" + parts.fragment
    return out


def _dsn_password(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        return unquote(userinfo.split(":", 1)[1])
    for key, value in parse_qsl(parts.query):
        if key == "password":
            return value
    return None


def load_settings(config_path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load, merge and validate the configuration; raise ``ConfigError`` naming the bad key.

    With no ``config_path`` the file is discovered (``discover_config_file``); finding none is fine.
    ``env`` defaults to ``os.environ``.
    """
    env = dict(os.environ) if env is None else env
    if config_path is None:
        config_path = discover_config_file(env)
    elif not config_path.is_file():
        raise ConfigError(str(config_path), "config file does not exist")
    data: dict[str, Any] = {}
    if config_path is not None:
        config_path = config_path.expanduser().absolute()
        data = _read_toml(config_path)
        if "root" in data:
            raise ConfigError("root", f"unknown key (in {config_path})")
        data["root"] = config_path.parent
    origins = _merge_env(data, env)
    try:
        return Settings.model_validate(data, context={"env": env})
    except PydanticValidationError as exc:
        # `from None`: a chained pydantic error would print input values, the DSN among them.
        raise _config_error(exc, origins, config_path) from None
    except _SettingsError as exc:
        raise ConfigError(exc.key, exc.problem + _origin(exc.key, origins, config_path)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc.strerror}") from None


def _merge_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``STATUSD_PROJECT`` and ``STATUSD_<SECTION>__<KEY>`` onto ``data``.

    Return ``{dotted_key: variable_name}`` so errors can name the variable. Other ``STATUSD_*``
    names without ``__`` (e.g. test switches) are not configuration and are left alone.
    """
    origins: dict[str, str] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest == "project":
            data["project"] = env[name]
            origins["project"] = name
            continue
        section, sep, key = rest.partition(_NESTED)
        if not sep:
            continue
        dotted = f"{section}.{key}"
        if not section or not key:
            raise ConfigError(dotted, f"malformed environment variable {name}")
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(section, f"must be a table to take {name}")
        table[key] = env[name]
        origins[dotted] = name
    return origins


def _config_error(exc: PydanticValidationError, origins: Mapping[str, str], config_path: Path | None) -> ConfigError:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in err["loc"]]
        key = ".".join(loc) or "(config)"
        if err["type"] == "extra_forbidden":
            problem = "unknown key" + _suggestion(loc)
        else:
            problem = str(err["msg"]).removeprefix("Value error, ")
        problems.append((key, problem + _origin(key, origins, config_path)))
    key, problem = problems[0]
    if len(problems) > 1:
        problem += "; also " + "; ".join(f"{k}: {p}" for k, p in problems[1:])
    return ConfigError(key, problem)


def _origin(key: str, origins: Mapping[str, str], config_path: Path | None) -> str:
    names = [name for dotted, name in origins.items() if dotted == key or dotted.startswith(key + ".")]
    if names:
        return f" (from environment variable {', '.join(names)})"
    return "" if config_path is None else f" (in {config_path})"


def _suggestion(loc: list[str]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    known = [f.alias or name for name, f in model.model_fields.items() if name != "root"]
    close = difflib.get_close_matches(loc[-1], known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
