"""Local mode: run ``ss4gl_nightly`` once with a local Airflow home (SQLite metadata) via ``dag.test``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from ingest.config import REPO_DIR, SAMPLES_DIR, load_catalogue, offline, state_dir


class LocalRunError(RuntimeError):
    """A one-line reason the local run cannot start."""


def airflow_env() -> dict[str, str]:
    """Environment for a local Airflow: home, SQLite metadata and logs under the state folder."""
    home = state_dir() / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(state_dir() / "logs" / "airflow"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|ingest)\..*",
        "GX_ANALYTICS_ENABLED": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_COLOR": "1",
    }
    # Setdefault: an explicit environment (CI, compose) wins.
    return {k: os.environ.get(k, v) for k, v in env.items()}


def prepare_airflow() -> None:
    """Point Airflow at the local home and migrate its metadata DB once per Airflow version."""
    os.environ.update(airflow_env())
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    import airflow

    marker = home / f".migrated-{airflow.__version__}"
    if not marker.exists():
        res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                             env=os.environ.copy(), check=False)
        if res.returncode != 0:
            raise LocalRunError(f"airflow db migrate failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
        marker.touch()


def ensure_pool(slots: int) -> None:
    from airflow.models.pool import Pool

    from ingest.orchestration import EUROSTAT_POOL

    Pool.create_or_update_pool(EUROSTAT_POOL, slots=slots, description="Concurrent Eurostat API calls",
                               include_deferred=False)


def load_dag(dag_id: str = "ss4gl_nightly"):
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_DIR / "dags"))
    if bag.import_errors:
        first = next(iter(bag.import_errors.items()))
        raise LocalRunError(f"DAG import error in {first[0]}: {str(first[1]).strip().splitlines()[-1]}")
    return bag.get_dag(dag_id)


@contextlib.contextmanager
def eurostat_source():
    """Offline: a replay server on 127.0.0.1 serving the bundled samples. Online: check Eurostat answers."""
    if offline():
        from ingest.eurostat.replay import ReplayServer

        with ReplayServer(SAMPLES_DIR / "eurostat") as server:
            os.environ["EUROSTAT_BASE_URL"] = server.base_url
            yield server.base_url
        return
    base = load_catalogue().eurostat["base_url"]
    import requests

    try:
        requests.get(f"{base}/catalogue/toc/txt?lang=en", timeout=10, stream=True).close()
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise LocalRunError(
            f"Eurostat is unreachable at {base} ({reason}); run with OFFLINE=1 to replay the bundled samples"
        ) from None
    yield base


def default_date() -> str:
    return (date.today() - timedelta(days=1)).isoformat()


def run_nightly(logical_date: str | None = None) -> tuple[bool, dict | None]:
    """Run the nightly DAG once; return (success, summary)."""
    import pendulum

    from ingest import warehouse

    logical_date = logical_date or default_date()
    url = warehouse.warehouse_url()
    warehouse.migrate(url)
    prepare_airflow()
    with eurostat_source():
        ensure_pool(int(load_catalogue().eurostat.get("pool_slots", 2)))
        dag = load_dag()
        when = pendulum.parse(logical_date).replace(hour=1, minute=30, tzinfo=pendulum.timezone("Europe/Brussels"))
        dagrun = dag.test(logical_date=when)
    summary = read_summary(dagrun.run_id)
    return str(dagrun.state) in ("success", "DagRunState.SUCCESS"), summary


def read_summary(run_id: str) -> dict | None:
    from ingest.warehouse import connect

    conn = connect()
    with conn, conn.cursor() as cur:
        cur.execute("select summary from audit.run_summaries where run_id = %s", (run_id,))
        row = cur.fetchone()
    conn.close()
    return row[0] if row else None
