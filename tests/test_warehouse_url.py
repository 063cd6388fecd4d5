"""The warehouse URL and its options (issue #16.2): libpq options (TLS, timeouts) survive every hop, to psycopg2
and to dbt; outside Airflow the connection `warehouse` comes from AIRFLOW_CONN_WAREHOUSE, parsed by Airflow.

Real components: libpq (psycopg2's parser and connections) on the test server, dbt-postgres through the project's
own profiles.yml, the `ss4gl` CLI with Airflow's Connection class. Resolution inside Airflow (a task, the metadata
database, no connection at all) is in tests/ops/test_warehouse_connection.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import parse_dsn

from ingest.config import DBT_PROJECT_DIR
from ingest.warehouse import (
    DBT_PROFILE_OPTIONS,
    LOADER,
    ConnectionParts,
    WarehouseError,
    configured_url,
    connect,
    in_airflow,
    redact,
)

REPO = Path(__file__).resolve().parents[1]
TLS_URL = (
    "postgresql://app:p%40ss%20w0rd@db.example.org:6543/wh"
    "?sslmode=verify-full&sslrootcert=%2Fetc%2Fss4gl%2Fca.pem&connect_timeout=10"
)


@pytest.fixture
def restored_environ():
    """dbt is configured through os.environ: give every test here the environment back as it found it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def parts_from_dbt_env(env: dict[str, str]) -> ConnectionParts:
    """The way back: what dbt's profile was given, as connection parts (options in the profile's order)."""
    return ConnectionParts(
        host=env["WAREHOUSE_HOST"],
        port=int(env["WAREHOUSE_PORT"]),
        user=env["WAREHOUSE_USER"],
        password=env["WAREHOUSE_PASSWORD"],
        dbname=env["WAREHOUSE_DBNAME"],
        options=tuple((o, env[f"WAREHOUSE_{o.upper()}"]) for o in DBT_PROFILE_OPTIONS if env[f"WAREHOUSE_{o.upper()}"]),
    )


def test_tls_options_reach_dbt_and_come_back():
    parts = ConnectionParts.from_url(TLS_URL)
    assert dict(parts.options) == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ss4gl/ca.pem",
        "connect_timeout": "10",
    }
    env = parts.dbt_env()
    assert env["WAREHOUSE_SSLMODE"] == "verify-full"
    assert env["WAREHOUSE_SSLROOTCERT"] == "/etc/ss4gl/ca.pem"
    assert env["WAREHOUSE_CONNECT_TIMEOUT"] == "10"
    assert env["WAREHOUSE_PASSWORD"] == "p@ss w0rd"
    # options the URL does not carry are empty: profiles.yml then keeps dbt-postgres's defaults
    assert env["WAREHOUSE_SSLCERT"] == env["WAREHOUSE_SSLKEY"] == env["WAREHOUSE_KEEPALIVES_IDLE"] == ""
    # and back: the profile's values rebuild a URL libpq reads exactly as it reads the original
    back = parts_from_dbt_env(env)
    assert parse_dsn(back.url()) == parse_dsn(TLS_URL)
    assert ConnectionParts.from_url(parts.url()) == parts


def test_options_dbt_has_no_field_for_go_as_libpq_variables_or_are_refused():
    parts = ConnectionParts.from_url(TLS_URL + "&sslcrl=%2Fetc%2Fss4gl%2Fcrl.pem&target_session_attrs=read-write")
    env = parts.dbt_env()
    assert env["PGSSLCRL"] == "/etc/ss4gl/crl.pem"
    assert env["PGTARGETSESSIONATTRS"] == "read-write"
    with pytest.raises(WarehouseError) as exc:
        ConnectionParts.from_url(TLS_URL + "&sslpassword=k3y-secret&keepalives=0").dbt_env()
    message = str(exc.value)
    assert "\n" not in message and "keepalives, sslpassword" in message and "k3y-secret" not in message


def test_a_later_url_never_inherits_an_earlier_urls_libpq_variables(restored_environ, warehouse_url):
    from ingest.tasks.transform import export_dbt_env

    os.environ.pop("PGTARGETSESSIONATTRS", None)
    export_dbt_env(warehouse_url + "?target_session_attrs=read-write&sslmode=disable")
    assert os.environ["PGTARGETSESSIONATTRS"] == "read-write"
    assert os.environ["WAREHOUSE_SSLMODE"] == "disable"
    export_dbt_env(warehouse_url)
    assert "PGTARGETSESSIONATTRS" not in os.environ
    assert os.environ["WAREHOUSE_SSLMODE"] == ""


def test_redact_hides_every_password():
    assert redact(TLS_URL) == TLS_URL.replace("p%40ss%20w0rd", "***")
    assert redact("postgresql://h/db?password=pw&sslpassword=k&sslmode=require") == (
        "postgresql://h/db?password=***&sslpassword=***&sslmode=require"
    )
    assert redact("postgresql://h:5432/db") == "postgresql://h:5432/db"


def test_connect_keeps_the_urls_options_beside_the_stage_role(fresh_db):
    url = fresh_db + "?application_name=ss4gl_probe&connect_timeout=3&options=-c%20statement_timeout%3D1234"
    conn = connect(url, role=LOADER)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select current_setting('application_name'), current_setting('statement_timeout'), current_user"
            )
            assert cur.fetchone() == ("ss4gl_probe", "1234ms", LOADER)
        assert conn.get_dsn_parameters()["connect_timeout"] == "3"
    finally:
        conn.close()


def test_outside_airflow_the_connection_comes_from_airflow_conn_warehouse(tmp_path):
    """`ss4gl warehouse url` (local mode, not an Airflow task) with the connection in JSON form: Airflow parses it,
    its libpq extras become query parameters, the provider's own keys are left out, nothing embedded starts."""
    assert not in_airflow()
    conn = {
        "conn_type": "postgres",
        "host": "db.example.org",
        "port": 6543,
        "login": "app",
        "password": "p@ss w0rd",
        "schema": "wh",
        "extra": {"sslmode": "verify-full", "sslrootcert": "/etc/ss4gl/ca.pem", "connect_timeout": 10, "cursor": "x"},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "WAREHOUSE_URL"}
    env.update(
        AIRFLOW_CONN_WAREHOUSE=json.dumps(conn),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        SS4GL_HOME=str(tmp_path / "state"),
    )
    res = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "warehouse", "url"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert res.returncode == 0, res.stderr
    url = res.stdout.strip().splitlines()[-1]
    assert parse_dsn(url) == parse_dsn(TLS_URL)
    assert "cursor" in res.stderr and "cursor" not in url  # named as left out
    assert not (tmp_path / "state" / "warehouse").exists()


AIRFLOW_PARSES = """
import json, sys
from airflow.sdk import Connection
from ingest.warehouse import ConnectionFields, url_from_connection
out = []
for value in json.loads(sys.argv[1]):
    theirs = Connection.from_json(value, conn_id="warehouse") if value.startswith("{") else Connection(
        conn_id="warehouse", uri=value)
    out.append([url_from_connection(ConnectionFields.from_env_value(value)), url_from_connection(theirs)])
print(json.dumps(out))
"""


def test_airflow_conn_warehouse_is_read_as_airflow_reads_it(tmp_path):
    """Outside Airflow the variable is parsed without importing Airflow: same URL as Airflow's own Connection."""
    values = [
        "postgresql://app:p%40ss%20w0rd@db.example.org:6543/wh?sslmode=verify-full&connect_timeout=10",
        "postgres://app@db.example.org/wh?__extra__=%7B%22sslmode%22%3A+%22require%22%2C+%22keepalives_idle%22%3A+30%7D",
        "postgresql://db.example.org",
        "postgresql://app@%2Fvar%2Frun%2Fpostgresql/wh",
        json.dumps({"conn_type": "postgres", "host": "h", "port": "5433", "extra": {"sslmode": "require", "iam": 1}}),
        json.dumps({"conn_type": "postgresql", "host": "h", "login": "u", "extra": '{"sslrootcert": "/ca.pem"}'}),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    res = subprocess.run(
        [sys.executable, "-c", AIRFLOW_PARSES, json.dumps(values)], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert res.returncode == 0, res.stderr[-3000:]
    pairs = json.loads(res.stdout.strip().splitlines()[-1])
    for value, (ours, airflows) in zip(values, pairs, strict=True):
        assert ours == airflows, value
    assert "sslmode=require&keepalives_idle=30" in pairs[1][0]


def test_configured_url_prefers_warehouse_url(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", TLS_URL)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://other@elsewhere/db")
    assert configured_url() == TLS_URL


def _dbt_connection_test(url: str, capfd) -> tuple[bool, str]:
    """`dbt debug --connection` in-process with the environment run_dbt / the Cosmos hook export for ``url``."""
    from dbt.cli.main import dbtRunner

    from ingest.config import state_dir
    from ingest.tasks.transform import export_dbt_env

    export_dbt_env(url)
    capfd.readouterr()
    res = dbtRunner().invoke(
        [
            "debug",
            "--connection",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--log-path",
            str(state_dir() / "logs" / "dbt"),
        ]
    )
    out = capfd.readouterr()
    return bool(res.success), out.out + out.err


def test_dbt_connects_with_the_urls_tls_mode(fresh_db, restored_environ, capfd):
    """The options reach dbt: the same server accepts dbt with sslmode=disable and refuses it when the URL requires
    TLS the server does not offer (or a CA file that does not exist, on a server with TLS)."""
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("show ssl")
        server_tls = cur.fetchone()[0] == "on"
    ok, out = _dbt_connection_test(fresh_db + "?sslmode=disable&connect_timeout=7", capfd)
    assert ok, out
    assert "sslmode: disable" in out and "connect_timeout: 7" in out
    tls = "sslmode=verify-full&sslrootcert=%2Fnonexistent%2Fca.pem" if server_tls else "sslmode=require"
    ok, out = _dbt_connection_test(f"{fresh_db}?{tls}", capfd)
    assert not ok
    assert ("root certificate file" in out) if server_tls else ("server does not support SSL" in out), out
    # an option without a profile field reaches dbt's connection as libpq's variable (PGTARGETSESSIONATTRS)
    ok, out = _dbt_connection_test(fresh_db + "?target_session_attrs=read-only", capfd)
    assert not ok
    assert "read-only" in out, out
