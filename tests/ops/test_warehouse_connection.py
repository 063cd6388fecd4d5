"""The warehouse of an Airflow task is the Airflow connection `warehouse`, resolved by Airflow (issue #16.2).

A real Airflow home (SQLite metadata, `airflow db migrate`), the connection added with `airflow connections add`
(the metadata database: what the UI writes), neither WAREHOUSE_URL nor AIRFLOW_CONN_WAREHOUSE in the environment,
and a one-task DAG run by `airflow dags test` (tasks run under Airflow's task runner, as on a worker) whose task
resolves the warehouse and connects to it: the machine's PostgreSQL on 127.0.0.1:5432. Without the connection the
task fails with one line and no embedded server is started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ingest.config import REPO_DIR
from ingest.warehouse import NO_WAREHOUSE
from tests.ops.conftest import fresh_database

PY = sys.executable
PASSWORD = "conn-pw-must-never-show"  # trust auth on 127.0.0.1 ignores it: only its redaction is checked

PROBE_DAG = textwrap.dedent(
    """
    import json
    import os
    from pathlib import Path

    import pendulum
    from airflow.sdk import dag, task


    @dag(dag_id="warehouse_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
    def warehouse_probe():
        @task(retries=0)
        def resolve():
            from ingest import warehouse
            from ingest.tasks.transform import dbt_env

            out = Path(os.environ["PROBE_OUT"])
            try:
                url = warehouse.warehouse_url()
            except warehouse.WarehouseError as exc:
                out.write_text(json.dumps({"in_airflow": warehouse.in_airflow(), "error": str(exc)}))
                raise
            conn = warehouse.connect(url, role=None)
            with conn.cursor() as cur:
                cur.execute("select current_database(), inet_server_port(), current_setting('application_name')")
                database, port, application_name = cur.fetchone()
            dsn = conn.get_dsn_parameters()
            conn.close()
            env = {k: v for k, v in dbt_env(url).items() if k != "WAREHOUSE_PASSWORD"}
            out.write_text(json.dumps({
                "in_airflow": warehouse.in_airflow(), "url": warehouse.redact(url), "database": database, "port": port,
                "application_name": application_name, "sslmode": dsn.get("sslmode"),
                "connect_timeout": dsn.get("connect_timeout"), "dbt": env,
            }))

        resolve()


    warehouse_probe()
    """
)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """An Airflow home with migrated SQLite metadata and the probe DAG; the environment of its processes."""
    root = tmp_path_factory.mktemp("airflow_conn")
    home, dags, state = root / "airflow", root / "dags", root / "state"
    for d in (home, dags, state):
        d.mkdir()
    (dags / "warehouse_probe.py").write_text(PROBE_DAG)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "PG", "WAREHOUSE_")) and k not in ("SS4GL_HOME",)
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "logs"),
            "SS4GL_HOME": str(state),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")])),
            "NO_COLOR": "1",
        }
    )
    assert "WAREHOUSE_URL" not in env and "AIRFLOW_CONN_WAREHOUSE" not in env
    airflow_cli(env, "db", "migrate")
    return {"env": env, "state": state, "out": root / "probe.json"}


def airflow_cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([PY, "-m", "airflow", *args], capture_output=True, text=True, env=env, timeout=600)
    if check and res.returncode != 0:
        pytest.fail(f"airflow {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}", pytrace=False)
    return res


def run_probe(airflow: dict) -> tuple[dict, str]:
    """`airflow dags test warehouse_probe`: what its task wrote, and everything the run printed."""
    out = airflow["out"]
    out.unlink(missing_ok=True)
    res = airflow_cli({**airflow["env"], "PROBE_OUT": str(out)}, "dags", "test", "warehouse_probe", check=False)
    printed = res.stdout + res.stderr
    assert out.exists(), f"the probe task did not run:\n{printed[-4000:]}"
    return json.loads(out.read_text()), printed


def server_processes_under(path: Path) -> list[str]:
    """Command lines of running processes that mention ``path`` (an embedded postgres would: -D <state>/...)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmd and "postgres" in cmd:
                found.append(cmd)
    return found


@pytest.fixture
def warehouse_db():
    """A fresh database on the machine's PostgreSQL: the server the connection names."""
    with fresh_database("ss4gl_conn") as name:
        yield name


def test_a_task_without_the_connection_fails_in_one_line_and_starts_no_server(airflow):
    assert "warehouse" not in airflow_cli(airflow["env"], "connections", "list", "-o", "plain").stdout.split()
    result, printed = run_probe(airflow)
    assert result == {"in_airflow": True, "error": NO_WAREHOUSE}
    assert NO_WAREHOUSE in printed  # the task's failure, as its log shows it
    assert not (airflow["state"] / "warehouse").exists()
    assert server_processes_under(airflow["state"]) == []


def test_a_task_resolves_the_connection_from_the_metadata_database(airflow, warehouse_db):
    uri = (
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{warehouse_db}"
        "?sslmode=disable&connect_timeout=7&application_name=ss4gl_conn_probe"
    )
    airflow_cli(airflow["env"], "connections", "add", "warehouse", "--conn-uri", uri)
    try:
        result, printed = run_probe(airflow)
    finally:
        airflow_cli(airflow["env"], "connections", "delete", "warehouse")
    assert result["in_airflow"] is True
    # the server and database the connection names, with its extras on the live connection
    assert (result["database"], result["port"]) == (warehouse_db, 5432)
    assert result["application_name"] == "ss4gl_conn_probe"
    assert (result["sslmode"], result["connect_timeout"]) == ("disable", "7")
    # and in what dbt is given
    dbt = result["dbt"]
    assert (dbt["WAREHOUSE_HOST"], dbt["WAREHOUSE_PORT"]) == ("127.0.0.1", "5432")
    assert dbt["WAREHOUSE_DBNAME"] == warehouse_db
    assert (dbt["WAREHOUSE_SSLMODE"], dbt["WAREHOUSE_CONNECT_TIMEOUT"]) == ("disable", "7")
    assert dbt["WAREHOUSE_APPLICATION_NAME"] == "ss4gl_conn_probe"
    assert "***" in result["url"] and PASSWORD not in result["url"]
    assert PASSWORD not in printed
    assert not (airflow["state"] / "warehouse").exists()
