"""Which Postgres the warehouse is, as a URL: from ``WAREHOUSE_URL`` or the Airflow connection ``warehouse``
(resolution order: :mod:`ingest.warehouse`), in parts for dbt's profile and psql, with its libpq options, and
redacted for logs. Never starts anything; the embedded server and connections live in :mod:`ingest.warehouse`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ingest.config import WAREHOUSE_CONN_ID

SUPERUSER = "postgres"

log = logging.getLogger(__name__)

# The parts of a URL that ConnectionParts holds as fields; every other query parameter is a libpq option.
_URL_FIELDS = ("host", "port", "user", "password", "dbname")
# libpq options that dbt-postgres's profile has a field for (dbt/adapters/postgres/connections.py,
# PostgresCredentials): dbt_project/profiles.yml reads each from WAREHOUSE_<OPTION> (empty: dbt's default).
DBT_PROFILE_OPTIONS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "connect_timeout",
    "keepalives_idle",
    "application_name",
)
# The other libpq options that libpq also reads from an environment variable (PQconndefaults): dbt's psycopg2
# connection gets them that way. An option in neither list (sslpassword, keepalives, tcp_user_timeout, ...) cannot
# reach dbt: dbt_env refuses it in one line rather than connect dbt differently from the rest of the pipeline.
LIBPQ_ENV = {
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "channel_binding": "PGCHANNELBINDING",
    "hostaddr": "PGHOSTADDR",
    "client_encoding": "PGCLIENTENCODING",
    "options": "PGOPTIONS",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcertmode": "PGSSLCERTMODE",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "min_protocol_version": "PGMINPROTOCOLVERSION",
    "max_protocol_version": "PGMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# libpq parameters with no environment variable (they still reach psycopg2 connections in the URL).
LIBPQ_OPTIONS_WITHOUT_ENV = frozenset(
    {
        "fallback_application_name",
        "keepalives",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "sslpassword",
        "replication",
        "scram_client_key",
        "scram_server_key",
        "oauth_issuer",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_scope",
        "sslkeylogfile",
    }
)
# Query parameters redact() masks besides the password of the authority.
_SECRET_PARAMS = ("password", "sslpassword", "oauth_client_secret")


class WarehouseError(RuntimeError):
    """A warehouse problem with a one-line, user-facing message."""


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``a=1&b=x%20y`` as libpq reads a URL's query: percent-decoding only (a ``+`` stays a ``+``)."""
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


@dataclass(frozen=True)
class ConnectionParts:
    """A warehouse URL in parts: what dbt's profile and psql need, and its libpq options (``sslmode``, ...)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    options: tuple[tuple[str, str], ...] = ()  # the URL's other query parameters, in order

    @classmethod
    def from_url(cls, url: str) -> ConnectionParts:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise WarehouseError(f"WAREHOUSE_URL must start with postgresql:// (got scheme {parts.scheme!r})")
        pairs = _query_pairs(parts.query)
        named = {k: v for k, v in pairs if k in _URL_FIELDS}  # libpq: a query parameter wins over the authority
        try:
            port = int(named.get("port") or parts.port or 5432)
        except ValueError:
            raise WarehouseError("WAREHOUSE_URL has a port that is not a number") from None
        return cls(
            host=named.get("host") or parts.hostname or "127.0.0.1",
            port=port,
            user=named.get("user") or unquote(parts.username or SUPERUSER),
            password=named.get("password") or unquote(parts.password or ""),
            dbname=named.get("dbname") or unquote((parts.path or "/").lstrip("/")) or "postgres",
            options=tuple((k, v) for k, v in pairs if k not in _URL_FIELDS),
        )

    def url(self) -> str:
        """The libpq URL of these parts (``from_url(parts.url()) == parts``)."""
        user = quote(self.user, safe="")
        password = f":{quote(self.password, safe='')}" if self.password else ""
        options = list(self.options)
        if self.host.startswith("/"):  # a Unix-socket directory: only the query can name it
            host, options = "", [("host", self.host), *options]
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in options)
        return f"postgresql://{user}{password}@{host}:{self.port}/{quote(self.dbname, safe='')}" + (
            f"?{query}" if query else ""
        )

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt's profile (dbt_project/profiles.yml) and its libpq connection read: every
        ``WAREHOUSE_*`` always (empty when the URL has no such option, so a previous value never lingers), and
        the libpq variable of each option the profile has no field for."""
        env = {
            "WAREHOUSE_HOST": self.host,
            "WAREHOUSE_PORT": str(self.port),
            "WAREHOUSE_USER": self.user,
            "WAREHOUSE_PASSWORD": self.password,
            "WAREHOUSE_DBNAME": self.dbname,
        }
        options = dict(self.options)
        for name in DBT_PROFILE_OPTIONS:
            env[f"WAREHOUSE_{name.upper()}"] = options.pop(name, "")
        unsupported = sorted(k for k in options if k not in LIBPQ_ENV)
        if unsupported:
            raise WarehouseError(
                f"the warehouse URL option(s) {', '.join(unsupported)} cannot be passed to dbt (no dbt-postgres"
                " profile field, no libpq environment variable): remove them from the URL / connection extra"
            )
        env.update({LIBPQ_ENV[k]: v for k, v in options.items()})
        return env


def redact(url: str) -> str:
    """The URL without its secrets, the password and any secret query parameter (for logs and summaries)."""
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@") if parts.password else parts.netloc
    query = "&".join(
        f"{item.partition('=')[0]}=***" if unquote(item.partition("=")[0]) in _SECRET_PARAMS else item
        for item in parts.query.split("&")
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return parts._replace(netloc=netloc, query=query).geturl()


# --------------------------------------------------------------------------------------------- URL resolution
def in_airflow() -> bool:
    """Whether this process runs under an Airflow supervisor: a task (on a worker, or in ``dag.test``), DAG
    parsing, a callback or a trigger. The task SDK's supervisor channel is open then; Airflow tests the same to
    choose a task's secrets backends (``ensure_secrets_backend_loaded``). Read from ``sys.modules``: a process that
    never imported Airflow's task runner is not one, and Airflow is not imported to find out."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def configured_url() -> str | None:
    """WAREHOUSE_URL, else the Airflow connection ``warehouse`` (inside Airflow: resolved by Airflow; outside:
    AIRFLOW_CONN_WAREHOUSE), else None. Never starts anything."""
    if os.environ.get("WAREHOUSE_URL"):
        return os.environ["WAREHOUSE_URL"]
    if in_airflow():
        return _airflow_connection_url()
    value = os.environ.get(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}")
    return url_from_connection(ConnectionFields.from_env_value(value)) if value else None


@dataclass(frozen=True)
class ConnectionFields:
    """The fields of an Airflow connection that ``url_from_connection`` reads (``airflow.sdk.Connection`` has them)."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: str | None = None  # JSON, as Airflow keeps it

    @classmethod
    def from_env_value(cls, value: str, conn_id: str = WAREHOUSE_CONN_ID) -> ConnectionFields:
        """An ``AIRFLOW_CONN_*`` value read as Airflow reads it (``Connection.from_json`` / ``from_uri``: JSON, else
        a URI whose query holds the extra, or its ``__extra__`` JSON), without importing Airflow: a local command
        must not pay Airflow's import and logging set-up for one string. tests/test_warehouse_url.py checks that
        both give the same URL."""
        if value.lstrip().startswith("{"):
            try:
                fields = json.loads(value)
            except ValueError:
                raise WarehouseError(f"AIRFLOW_CONN_{conn_id.upper()} starts with {{ but is not valid JSON") from None
            extra = fields.get("extra")
            return cls(
                conn_id=conn_id,
                conn_type=_conn_type(fields.get("conn_type")),
                host=fields.get("host"),
                port=fields.get("port"),
                login=fields.get("login"),
                password=fields.get("password"),
                schema=fields.get("schema"),
                extra=json.dumps(extra) if extra and not isinstance(extra, str) else extra or None,
            )
        parts = urlsplit(value)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            port = parts.port
        except ValueError:
            raise WarehouseError(f"AIRFLOW_CONN_{conn_id.upper()} has a port that is not a number") from None
        return cls(
            conn_id=conn_id,
            conn_type=_conn_type(parts.scheme),
            host=_uri_host(parts) or None,
            port=port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            schema=unquote(parts.path[1:]) or None,
            extra=query.get("__extra__", json.dumps(query) if query else None),
        )


def _uri_host(parts) -> str:
    """The host of a connection URI as Airflow reads it: a percent-encoded path (a Unix-socket directory) keeps its
    case, taken from the authority as written."""
    host = unquote(parts.hostname or "")
    if "/" in host:
        host = unquote(parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0])
    return host


def _conn_type(conn_type: str | None) -> str | None:
    """Airflow's spelling of a connection type (``postgresql`` is ``postgres``)."""
    return "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_") if conn_type else None


def _airflow_connection_url() -> str | None:
    """The connection ``warehouse`` as Airflow resolves it for a task (environment, secrets backends, metadata
    database), or None when Airflow has no such connection."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        return None
    return url_from_connection(conn)


def url_from_connection(conn) -> str:
    """A libpq URL from an Airflow connection (``airflow.sdk.Connection``): host, port, login, password, schema
    (the database) and, from ``extra``, every libpq parameter (``sslmode``, ``sslrootcert``, ``connect_timeout``,
    ...) as a query parameter. Other extra keys (the Postgres provider's own: ``cursor``, ``iam``, ...) are left
    out, named in a warning; values never appear in a message."""
    name = f"the Airflow connection `{conn.conn_id}`"
    if (conn.conn_type or "postgres") not in ("postgres", "postgresql"):
        raise WarehouseError(f"{name} has type {conn.conn_type!r}: the warehouse needs a postgres connection")
    if not conn.host:
        raise WarehouseError(f"{name} has no host")
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except ValueError:
        raise WarehouseError(f"{name}: its extra is not JSON") from None
    if not isinstance(extra, dict):
        raise WarehouseError(f"{name}: its extra is not a JSON object")
    libpq = set(DBT_PROFILE_OPTIONS) | set(LIBPQ_ENV) | LIBPQ_OPTIONS_WITHOUT_ENV
    options, ignored = [], []
    for key, value in extra.items():
        if key not in libpq or value is None:
            ignored.append(key)
        elif isinstance(value, dict | list):
            raise WarehouseError(f"{name}: extra {key!r} must be a single value")
        else:
            options.append((key, str(int(value)) if isinstance(value, bool) else str(value)))
    if ignored:
        log.warning("%s: extra %s left out (not libpq connection parameters)", name, ", ".join(sorted(ignored)))
    try:
        port = int(conn.port or 5432)
    except ValueError:
        raise WarehouseError(f"{name} has a port that is not a number") from None
    return ConnectionParts(
        host=conn.host,
        port=port,
        user=conn.login or SUPERUSER,
        password=conn.password or "",
        dbname=conn.schema or "postgres",
        options=tuple(options),
    ).url()
