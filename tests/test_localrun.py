"""Local mode's Airflow home: `make install` migrates it (`ss4gl run --prepare-only`); a first run starts at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SS4GL = [sys.executable, "-m", "ingest.cli"]


def prepare(home: Path, configured: bool = True) -> subprocess.CompletedProcess:
    """`ss4gl run --prepare-only` on the state folder ``home``; ``configured=False``: with no warehouse configured,
    as on a new machine (the tests' own warehouse is WAREHOUSE_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and (configured or k != "WAREHOUSE_URL")}
    env["SS4GL_HOME"] = str(home)
    return subprocess.run(
        [*SS4GL, "run", "--prepare-only"], capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False
    )


def test_prepare_only_migrates_the_local_airflow_home_once(tmp_path):
    from ingest.warehouse import EmbeddedServer

    first = prepare(tmp_path)
    assert first.returncode == 0, first.stderr
    airflow_home = tmp_path / "airflow"
    assert first.stdout.strip() == f"local Airflow home ready: {airflow_home}"
    db = sqlite3.connect(airflow_home / "airflow.db")
    try:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
    finally:
        db.close()
    assert {"dag_run", "task_instance", "slot_pool", "alembic_version"} <= tables
    assert len(list(airflow_home.glob(".migrated-*"))) == 1
    before = (airflow_home / "airflow.db").stat().st_mtime_ns

    second = prepare(tmp_path)  # already migrated for this Airflow version: nothing to do
    assert second.returncode == 0, second.stderr
    assert (airflow_home / "airflow.db").stat().st_mtime_ns == before
    assert not EmbeddedServer(tmp_path / "warehouse").is_running()  # no warehouse started by an install step


def test_prepare_only_parses_the_dbt_project_for_the_first_run(tmp_path):
    """`make install` leaves dbt's parse of the project for the local warehouse where Cosmos looks for it: the
    first run's `dbt build` re-uses it (same vars, profile and target) instead of parsing the whole project."""
    from ingest.warehouse import EmbeddedServer

    res = prepare(tmp_path, configured=False)
    assert res.returncode == 0, res.stderr
    cached = tmp_path / "airflow" / "cosmos" / "ss4gl_nightly__dbt" / "target" / "partial_parse.msgpack"
    assert cached.stat().st_size > 100_000
    server = EmbeddedServer(tmp_path / "warehouse")
    assert (server.pgdata / "PG_VERSION").exists() and not server.is_running()
    # the dashboard's Vega bundle is made here too (seconds of bundling a first run does not spend)
    (bundle,) = (tmp_path / "cache").glob("vega-bundle-*.js")
    assert bundle.read_text().startswith("/* vega-bundle: vl-convert-python ")

    # `make run` calls this step before every run: parsed since the project last changed, dbt is not run again
    parsed_at = cached.stat().st_mtime_ns
    again = prepare(tmp_path, configured=False)
    assert again.returncode == 0, again.stderr
    assert cached.stat().st_mtime_ns == parsed_at


def test_local_airflow_runs_cosmos_without_its_retry_backup(monkeypatch):
    """The dbt producer has no retries: Cosmos' "reliable retry" (an Airflow Variable rewritten with every XCom
    the build pushes) is off in local mode, as in the compose and Helm environments."""
    from ingest.localrun import airflow_env

    monkeypatch.delenv("AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY", raising=False)
    assert airflow_env()["AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY"] == "False"
    compose = (REPO / "docker-compose.yml").read_text()
    helm = (REPO / "deploy" / "helm" / "values.yaml").read_text()
    assert 'AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY: "False"' in compose
    assert helm.count("name: AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY") == 2
