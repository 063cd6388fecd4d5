"""Local mode: run ``ss4gl_nightly`` once with a local Airflow home (SQLite metadata) via ``dag.test``.

Local mode keeps the embedded warehouse as its default: the URL is resolved outside Airflow, before any task runs,
and given to the tasks as ``WAREHOUSE_URL`` (inside Airflow, ``ingest.warehouse`` never starts a server).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from ingest.config import DAG_ID, DAGS_DIR, SAMPLES_DIR, load_catalogue, offline, state_dir


class LocalRunError(RuntimeError):
    """A one-line reason the local run cannot start."""


def airflow_env() -> dict[str, str]:
    """Environment for a local Airflow: home, SQLite metadata and logs under the state folder."""
    home = state_dir() / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(state_dir() / "logs" / "airflow"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|ingest)\..*",
        "GX_ANALYTICS_ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",  # no usage pings from Cosmos
        # Cosmos keeps dbt's partial parse between runs here (its default, the machine's temp folder, is shared by
        # every state folder of the machine, each with its own warehouse profile).
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        # The dbt producer has no retries: no Variable rewritten at every node's end to serve one (a third of the
        # producer's time); its XComs are still backed up when it fails.
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_COLOR": "1",
    }
    # Setdefault: an explicit environment (CI, compose) wins.
    return {k: os.environ.get(k, v) for k, v in env.items()}


def prepare_airflow() -> Path:
    """Point Airflow at the local home and migrate its metadata DB once per Airflow version; the home."""
    from importlib.metadata import PackageNotFoundError, version

    os.environ.update(airflow_env())
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    try:
        airflow_version = version("apache-airflow-core")  # the package holding the metadata schema (Airflow 3)
    except PackageNotFoundError:
        airflow_version = version("apache-airflow")
    marker = home / f".migrated-{airflow_version}"
    if not marker.exists():
        res = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            check=False,
        )
        if res.returncode != 0:
            raise LocalRunError(f"airflow db migrate failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
        marker.touch()
    return home


def prepare_local() -> Path:
    """``make install`` (``ss4gl run --prepare-only``): the local Airflow home migrated and, when no warehouse is
    configured, the embedded warehouse's data folder initialised (not started) and dbt's parse of the project for
    it written where the first run's ``dbt build`` looks for one (Cosmos' cache), so that run re-uses it instead
    of parsing the whole project. A configured warehouse is left alone. The home."""
    from ingest import warehouse
    from ingest.config import DBT_GROUP_ID, DBT_MANIFEST
    from ingest.dashboard.assets import bundle_text
    from ingest.tasks.transform import run_dbt

    home = prepare_airflow()
    bundle_text()  # the dashboard's Vega bundle, cached in the state folder (bundling takes seconds)
    if warehouse.configured_url():
        return home
    os.environ["WAREHOUSE_URL"] = warehouse.EmbeddedServer().initialise()  # this process only: dbt's profile
    parsed = Path(os.environ["AIRFLOW__COSMOS__CACHE_DIR"]) / f"{DAG_ID}__{DBT_GROUP_ID}" / "target"
    if _newer(parsed / "partial_parse.msgpack", DBT_MANIFEST):
        return home  # `make run` calls this step each time: parsed since the project last changed
    run_dbt(["parse", "--quiet"], target=parsed)  # parsing never connects
    return home


def _newer(path: Path, than: Path) -> bool:
    try:
        return path.stat().st_mtime >= than.stat().st_mtime
    except OSError:
        return False


def ensure_pool(slots: int) -> None:
    from airflow.models.pool import Pool

    from ingest.orchestration import EUROSTAT_POOL

    Pool.create_or_update_pool(
        EUROSTAT_POOL, slots=slots, description="Concurrent Eurostat API calls", include_deferred=False
    )


def load_dag(dag_id: str = DAG_ID):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    if bag.import_errors:
        first = next(iter(bag.import_errors.items()))
        raise LocalRunError(f"DAG import error in {first[0]}: {str(first[1]).strip().splitlines()[-1]}")
    return bag.get_dag(dag_id)


def check_eurostat_reachable() -> None:
    """Online mode: fail fast, in one line, when Eurostat cannot be reached."""
    import requests

    base = load_catalogue().eurostat["base_url"]
    try:
        requests.get(f"{base}/catalogue/toc/txt?lang=en", timeout=10, stream=True).close()
    except requests.RequestException as exc:
        raise LocalRunError(
            f"Eurostat is unreachable at {base} ({type(exc).__name__}); "
            "run with OFFLINE=1 to replay the bundled samples"
        ) from None


@contextlib.contextmanager
def eurostat_source():
    """Offline: a replay server on 127.0.0.1 serving the bundled samples (real HTTP). Online: Eurostat itself."""
    if not offline():
        yield load_catalogue().eurostat["base_url"]
        return
    from ingest.eurostat.replay import ReplayServer

    with ReplayServer(SAMPLES_DIR / "eurostat") as server:
        os.environ["EUROSTAT_BASE_URL"] = server.base_url
        yield server.base_url


def ensure_local_pseudonym_key() -> None:
    """Local mode only: without SS4GL_PSEUDONYM_KEY, use a random key kept in the state folder (mode 0600)."""
    if os.environ.get("SS4GL_PSEUDONYM_KEY"):
        return
    import secrets

    path = state_dir() / "secrets" / "pseudonym_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        path.write_text(secrets.token_urlsafe(32))
        os.chmod(path, 0o600)
    os.environ["SS4GL_PSEUDONYM_KEY"] = path.read_text().strip()


def default_date() -> str:
    return (date.today() - timedelta(days=1)).isoformat()


@contextlib.contextmanager
def output_to(path: Path):
    """Send everything written to stdout/stderr (Airflow's task logs) to a file, at the descriptor level."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_progress(label: str):
    """Live task lines on the terminal while ``dag.test`` runs (ingest.progress), when the local Airflow metadata is
    the SQLite file it reads; nothing otherwise."""
    from sqlalchemy.engine import make_url

    from ingest.progress import RunProgress, terminal

    url = make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    if url.get_backend_name() != "sqlite" or not url.database:
        return contextlib.nullcontext()
    history = state_dir() / "logs" / "last-run.json"
    return RunProgress(Path(url.database), DAG_ID, label, history, terminal())


def run_nightly(logical_date: str | None = None, conf: dict | None = None) -> tuple[bool, dict | None, Path, list[str]]:
    """Run the nightly DAG once; return (success, summary, log file, alert lines)."""
    return run_dates([logical_date or default_date()], conf)[0]


def run_dates(dates: list[str], conf: dict | None = None) -> list[tuple[bool, dict | None, Path, list[str]]]:
    """Run the nightly DAG once per logical date, in order (a local backfill when conf says so)."""
    import pendulum

    from ingest import warehouse
    from ingest.orchestration import TIMEZONE

    conf = conf or {}
    replaying = conf.get("mode") == "backfill" and not conf.get("refetch")
    if not offline() and not replaying:
        check_eurostat_reachable()
    url = warehouse.warehouse_url()  # outside Airflow: WAREHOUSE_URL, AIRFLOW_CONN_WAREHOUSE, else embedded
    # The tasks below run inside Airflow (dag.test), where nothing configured is an error, never an embedded
    # server: local mode hands them the server it resolved (and started) here.
    os.environ["WAREHOUSE_URL"] = url
    warehouse.migrate(url)
    os.environ.setdefault("SS4GL_RETRY_DELAY_SECONDS", "5")  # local runs: short waits between retries
    ensure_local_pseudonym_key()
    prepare_airflow()
    results = []
    with eurostat_source():
        ensure_pool(int(load_catalogue().eurostat.get("pool_slots", 2)))
        dag = load_dag()
        for logical_date in dates:
            log_file = state_dir() / "logs" / f"run-{logical_date}.log"
            log_file.unlink(missing_ok=True)
            when = pendulum.parse(logical_date).replace(hour=1, minute=30, tzinfo=pendulum.timezone(TIMEZONE))
            with run_progress(f"{DAG_ID} {logical_date}"), output_to(log_file):
                dagrun = dag.test(logical_date=when, run_conf=conf or None)
            alerts = [
                ln.split("ALERT ", 1)[1].split(" [ss4gl]")[0].strip()
                for ln in log_file.read_text(errors="replace").splitlines()
                if "ALERT ss4gl" in ln
            ]
            ok = str(dagrun.state) in ("success", "DagRunState.SUCCESS")
            results.append((ok, read_summary(dagrun.run_id), log_file, alerts))
    return results


def read_summary(run_id: str) -> dict | None:
    from ingest.warehouse import LOADER, connect

    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        cur.execute("select summary from audit.run_summaries where run_id = %s", (run_id,))
        row = cur.fetchone()
    conn.close()
    return row[0] if row else None
