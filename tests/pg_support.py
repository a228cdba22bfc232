"""PostgreSQL plumbing for the test suite.

The shared server comes from ``STATUSD_TEST_PG_DSN`` (default ``postgresql://localhost/test``).
When it does not answer and PostgreSQL binaries are installed, :func:`ensure_server` starts a
throwaway cluster instead. Destructive tests (stopping Postgres mid-write) use their own
:class:`ThrowawayCluster`, never the shared server. Each test isolates itself in a schema from
:func:`fresh_schema`.

Nothing here imports ``statusd``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_DSN = "postgresql://localhost/test"
DSN_ENV = "STATUSD_TEST_PG_DSN"
CONNECT_TIMEOUT_S = 3.0

StopMode = Literal["smart", "fast", "immediate"]
T = TypeVar("T")

HOW_TO_PROVIDE = f"""\
Provide a PostgreSQL server for the tests in one of these ways:
  - set {DSN_ENV}=postgresql://USER@HOST:PORT/DBNAME to a server where USER may create schemas;
  - install PostgreSQL (e.g. `apt-get install postgresql`) so the tests can start a throwaway
    cluster (initdb and pg_ctl must be found via `pg_config --bindir` or /usr/lib/postgresql/*/bin);
  - start the machine's cluster:
      pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"""

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def test_dsn() -> str:
    """Return the DSN of the shared test server from the environment."""
    return os.environ.get(DSN_ENV) or DEFAULT_DSN


test_dsn.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name


def redact(dsn: str) -> str:
    """Return ``dsn`` with any password replaced, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread.

    A separate thread keeps this usable from sync fixtures and from inside a running loop
    without touching the caller's event loop.
    """
    result: list[T] = []
    error: list[BaseException] = []

    async def main() -> None:
        result.append(await factory())

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="pg_support", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _probe(dsn: str, connect_timeout: float) -> None:
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def connect_error(dsn: str, timeout: float = CONNECT_TIMEOUT_S) -> BaseException | None:
    """Return why ``dsn`` cannot be used, or None when a connection and ``SELECT 1`` succeed."""
    try:
        run_async(lambda: _probe(dsn, timeout))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return exc
    return None


def find_bindir() -> Path | None:
    """Locate a PostgreSQL bin directory holding initdb, pg_ctl and postgres."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: [int(x) if x.isdigit() else 0 for x in re.split(r"[./]", p)], reverse=True)
    candidates += [Path(p) for p in versioned]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for cand in candidates:
        if all((cand / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return cand
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: pick the account to run it as (None = ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


class ThrowawayCluster:
    """A private PostgreSQL cluster on a free 127.0.0.1 port, in a temporary directory.

    Tuned for quick start and stop (fsync off, small buffers, no autovacuum); commits stay
    synchronous so an acknowledged commit survives ``stop("immediate")``. The port is kept
    across restarts, so :attr:`dsn` stays valid. Usable as a context manager; from async tests
    use :meth:`astart`, :meth:`astop` and :meth:`arestart` so the event loop keeps running while
    PostgreSQL starts or stops.
    """

    def __init__(
        self,
        *,
        bindir: Path | str | None = None,
        dbname: str = "test",
        settings: Mapping[str, str] | None = None,
    ) -> None:
        found = Path(bindir) if bindir is not None else find_bindir()
        if found is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) found.\n" + HOW_TO_PROVIDE)
        self.bindir = found
        self.dbname = dbname
        self.superuser = "postgres"
        self._extra_settings = dict(settings or {})
        self._user = _unprivileged_user()
        self._lock = threading.RLock()
        self._tmp: Path | None = None
        self._port: int | None = None
        self._running = False
        self._closed = False

    # -- paths and addresses -------------------------------------------------------------

    @property
    def root(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("the cluster has not been started yet: call start() first")
        return self._tmp

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the cluster has not been started yet: call start() first")
        return self._port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        """TCP DSN of the test database (unchanged across restarts)."""
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{self.dbname}"

    @property
    def socket_dsn(self) -> str:
        """Unix-socket DSN of the test database."""
        return f"postgresql://{self.superuser}@/{self.dbname}?host={self.socket_dir}&port={self.port}"

    @property
    def running(self) -> bool:
        return self._running

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the cluster was closed; create a new ThrowawayCluster")
            if self._running:
                return
            if self._tmp is None:
                self._create()
                return
            self._pg_ctl_start()

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server (``fast``: abort sessions cleanly; ``immediate``: crash-like)."""
        with self._lock:
            if not self._running:
                return
            proc = self._run(
                [self._exe("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60"],
                check=False,
            )
            if proc.returncode != 0 and self._status() == 0:
                raise RuntimeError(f"pg_ctl stop -m {mode} failed:\n{proc.stdout}{proc.stderr}")
            self._running = False

    def restart(self, mode: StopMode = "fast") -> None:
        with self._lock:
            self.stop(mode)
            self.start()

    def ensure_running(self) -> None:
        """Start the server if a previous test left it stopped."""
        with self._lock:
            if self._running and self._status() != 0:
                self._running = False
            self.start()

    def close(self) -> None:
        """Stop the server immediately and delete its files."""
        with self._lock:
            if self._closed:
                return
            if self._tmp is not None:
                with contextlib.suppress(Exception):
                    self.stop("immediate")
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self, mode: StopMode = "fast") -> None:
        await asyncio.to_thread(self.stop, mode)

    async def arestart(self, mode: StopMode = "fast") -> None:
        await asyncio.to_thread(self.restart, mode)

    def __enter__(self) -> ThrowawayCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"port {self._port}" if self._port else "not created"
        return f"<ThrowawayCluster {where} {'running' if self._running else 'stopped'}>"

    # -- internals ---------------------------------------------------------------------------

    def _exe(self, name: str) -> str:
        return str(self.bindir / name)

    def _run(self, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if self._user is not None and self._tmp is not None:
            env["HOME"] = str(self._tmp)
        proc = subprocess.run(
            cmd,
            cwd=self._tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if check and proc.returncode != 0:
            output = f"{proc.stdout}{proc.stderr}{self._log_tail()}"
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{output}")
        return proc

    def _status(self) -> int:
        return self._run([self._exe("pg_ctl"), "status", "-D", str(self.data_dir)], check=False).returncode

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""
        return "\n--- postgres.log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def _create(self) -> None:
        # Short path under /tmp: the socket path must fit in 107 bytes and be reachable by the
        # unprivileged account.
        base = "/tmp" if os.path.isdir("/tmp") else None
        self._tmp = Path(tempfile.mkdtemp(prefix="statusd-pg-", dir=base))
        atexit.register(self.close)
        if self._user is not None:
            os.chown(self._tmp, self._user.pw_uid, self._user.pw_gid)
        self._run(
            [
                self._exe("initdb"),
                "-D", str(self.data_dir),
                "-U", self.superuser,
                "-A", "trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )  # fmt: skip
        for attempt in range(5):
            self._port = _free_port()
            self._write_conf()
            try:
                self._pg_ctl_start()
                break
            except RuntimeError:
                # Most likely someone took the port between probing and binding: try another.
                if attempt == 4:
                    raise
        self._run(
            [
                self._exe("createdb"),
                "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.superuser, self.dbname,
            ]
        )  # fmt: skip

    def _write_conf(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "shared_buffers": "'16MB'",
            "fsync": "off",
            "full_page_writes": "off",
            "autovacuum": "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "logging_collector": "off",
            **self._extra_settings,
        }
        body = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.data_dir / "statusd_test.conf").write_text(body)
        conf = self.data_dir / "postgresql.conf"
        text = conf.read_text()
        if "include_if_exists = 'statusd_test.conf'" not in text:
            conf.write_text(text + "\ninclude_if_exists = 'statusd_test.conf'\n")

    def _pg_ctl_start(self) -> None:
        self._run(
            [
                self._exe("pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-w", "-t", "60",
            ]
        )  # fmt: skip
        self._running = True


_throwaway: dict[str, ThrowawayCluster] = {}


def ensure_server(dsn: str) -> str:
    """Return a DSN of a usable PostgreSQL server: ``dsn`` itself, or a throwaway cluster's.

    Raises RuntimeError saying how to provide a server when neither works.
    """
    if dsn in _throwaway:
        return _throwaway[dsn].dsn
    err = connect_error(dsn)
    if err is None:
        return dsn
    if isinstance(err, asyncpg.PostgresError):
        # The server answered but refused (unknown database, role or password): a configuration
        # mistake to fix, not a reason to run elsewhere.
        raise RuntimeError(
            f"PostgreSQL at {redact(dsn)} answered but refused the connection: {err!r}\n" + HOW_TO_PROVIDE
        )
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            f"No PostgreSQL server for the tests: cannot connect to {redact(dsn)} ({err!r}) and no "
            "PostgreSQL binaries were found to start a throwaway cluster.\n" + HOW_TO_PROVIDE
        )
    cluster = ThrowawayCluster(bindir=bindir)
    try:
        cluster.start()
    except Exception as exc:
        cluster.close()
        raise RuntimeError(
            f"No PostgreSQL server for the tests: cannot connect to {redact(dsn)} ({err!r}) and "
            f"starting a throwaway cluster with {bindir} failed: {exc}\n" + HOW_TO_PROVIDE
        ) from exc
    print(
        f"pg_support: {redact(dsn)} unreachable ({err!r}); using throwaway cluster {cluster.dsn}",
        file=sys.stderr,
    )
    _throwaway[dsn] = cluster
    return cluster.dsn


def _check_schema_name(name: str) -> str:
    if not _SCHEMA_RE.match(name):
        raise ValueError(f"unsafe schema name {name!r}")
    return name


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def new_schema_name(prefix: str = "t") -> str:
    """A name unique across processes and runs, e.g. ``t_1234_9f3a0c1e``."""
    return _check_schema_name(f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}")


def fresh_schema(dsn: str, prefix: str = "t") -> str:
    """Create a uniquely named schema and return its name."""
    name = new_schema_name(prefix)
    run_async(lambda: _execute(dsn, f'CREATE SCHEMA "{name}"'))
    return name


def drop_schema(dsn: str, name: str) -> None:
    """Drop ``name`` and everything in it (no error if it is already gone)."""
    _check_schema_name(name)
    run_async(lambda: _execute(dsn, f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
