"""Scale-out: ``ss4gl_nightly`` on Airflow 3.3 with the CeleryExecutor, as the docker-compose deployment runs it.

NEEDS REDIS on 127.0.0.1:6379 (the Celery broker) and PostgreSQL on 127.0.0.1:5432 with trust auth for user
``postgres`` (Airflow metadata + Celery result backend). When either is missing the test FAILS (it never
skips): CI provides both.

Real subprocesses with a temporary AIRFLOW_HOME: ``airflow db migrate``, ``airflow pools set eurostat 2``, then
``airflow api-server`` (the execution API the Airflow 3 workers talk to), ``airflow scheduler``,
``airflow dag-processor``, ``airflow triggerer`` and ``airflow celery worker --concurrency 2``. The Airflow
environment is the ``x-airflow-common`` environment of docker-compose.yml with the hosts replaced by local ones
(same names). The test triggers one run for a logical date and waits (bounded) for it to succeed, then checks
that every task instance ran on the Celery worker and that the warehouse marts are populated. Eurostat is the
loopback replay server of the bundled samples; the warehouse is a throwaway database on the test session's
embedded Postgres.
Every process group, the metadata database and the Redis database are cleaned up, also on failure.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import psycopg2
import pytest
import requests
import yaml

from ingest.config import REPO_DIR, SAMPLES_DIR, load_catalogue
from ingest.eurostat.replay import ReplayServer
from tests.conftest import query

pytestmark = pytest.mark.redis

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
DAG_ID = "ss4gl_nightly"
LOGICAL_DATE = "2026-11-26T00:30:00+00:00"  # 01:30 Europe/Brussels, the nightly slot
# A backfill window holding exactly one nightly slot: 2026-11-27 00:30 UTC.
BACKFILL_FROM, BACKFILL_TO = "2026-11-26T12:00:00+00:00", "2026-11-27T12:00:00+00:00"
# Bound for the DAG run: ~25 task instances, each a fresh task process (DAG parse, pandas/GX/dbt imports),
# two at a time on 2 CPUs shared with other jobs. SS4GL_CELERY_RUN_TIMEOUT (seconds) overrides it.
RUN_TIMEOUT = int(os.environ.get("SS4GL_CELERY_RUN_TIMEOUT", 12 * 60))
CLUSTERS = {"indescat", "cluster_montagne", "sports_technology", "mse_cluster", "epsi"}
AIRFLOW = [sys.executable, "-m", "airflow"]


# ------------------------------------------------------------------------------------------------- services
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_db():
    """An empty Redis database (1-15) for the broker; flushed afterwards. Fails when Redis is unreachable."""
    import redis

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"this test needs Redis on {REDIS_HOST}:{REDIS_PORT} (Celery broker): {exc}", pytrace=False)
    for db in secrets.SystemRandom().sample(range(1, 16), 15):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        if client.dbsize() == 0:
            break
    else:
        pytest.fail("no empty Redis database (1-15) for the Celery broker", pytrace=False)
    try:
        yield db
    finally:
        client.flushdb()
        client.close()


def compose_airflow_env() -> dict[str, str]:
    """The ``x-airflow-common`` environment of docker-compose.yml (what every Airflow container gets)."""
    doc = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
    return {k: str(v) for k, v in doc["x-airflow-common"]["environment"].items()}


class Processes:
    """Long-running Airflow components, each in its own process group with a log file."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            AIRFLOW + args,
            env=env,
            cwd=REPO_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")

    def stop_all(self) -> None:
        """SIGTERM every process group (then SIGKILL), including task processes that left the group."""
        family: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                family += [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.procs.values():
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            for p in family:
                try:
                    p.send_signal(sig)
                except psutil.Error:
                    pass
            _, alive = psutil.wait_procs(family, timeout=15 if sig == signal.SIGTERM else 5)
            family = alive
            if not alive:
                break
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def run_cli(args: list[str], env: dict[str, str], timeout: int = 240) -> str:
    res = subprocess.run(
        AIRFLOW + args, env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert res.returncode == 0, f"airflow {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def wait_for(what: str, check, timeout: float, procs: Processes, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def serve_airflow(
    procs: Processes,
    env: dict[str, str],
    api_port: int,
    meta_url: str,
    workers: tuple[tuple[str, list[str], dict[str, str]], ...] = (),
) -> None:
    """Start Airflow's api-server, scheduler, dag-processor and triggerer (plus ``workers``: (name, args, env)) and
    wait until the API answers and the dag-processor has serialised the DAG."""
    procs.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"], env)
    procs.start("scheduler", ["scheduler"], env)
    procs.start("dag-processor", ["dag-processor"], env)
    procs.start("triggerer", ["triggerer", "--skip-serve-logs"], env)  # deferrable sensors, as compose
    for name, args, worker_env in workers:
        procs.start(name, args, worker_env)

    def api_up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            return False

    wait_for("the api-server", api_up, 120, procs)
    wait_for(
        f"the dag-processor to serialise {DAG_ID}",
        lambda: query(meta_url, "select 1 from serialized_dag where dag_id = %s", DAG_ID),
        180,
        procs,
    )


# ------------------------------------------------------------------------------------------------- the test
@pytest.mark.timeout(RUN_TIMEOUT + 600)  # the suite's 900 s default is too short for start-up + run + teardown
def test_nightly_dag_runs_on_celery_workers(fresh_db, redis_db, metadata_db, tmp_path):
    """Needs Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432): the whole DAG on a CeleryExecutor, then
    `airflow backfill create` of the next nightly slot through the same scheduler and worker."""
    home, logs, state = tmp_path / "airflow", tmp_path / "logs", tmp_path / "state"
    for d in (home, logs, state):
        d.mkdir()
    meta_sqla = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{metadata_db}"
    meta_url = f"postgresql://postgres@127.0.0.1:5432/{metadata_db}"
    api_port = _free_port()
    worker_name = f"ss4gl-celery-worker-{uuid.uuid4().hex[:8]}"

    compose = compose_airflow_env()
    # Local stand-ins for the compose hosts: the SAME variable names, other values.
    overrides = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DIR / "dags"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_sqla,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{metadata_db}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        "AIRFLOW_CONN_WAREHOUSE": fresh_db,  # the warehouse, as compose passes it (an Airflow connection)
        "SS4GL_HOME": str(state),
        "SS4GL_PSEUDONYM_KEY": "celery-test-key-not-a-secret",
        "SURVEY_INBOX": str(SAMPLES_DIR / "inbox"),
        "EUROSTAT_BASE_URL": None,  # set below: the replay server
    }
    missing = sorted(set(overrides) - set(compose))
    assert not missing, f"docker-compose.yml's x-airflow-common environment lacks {missing}"
    assert compose["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    # Test-only settings (not deployment settings): isolation from other runs on this machine.
    test_only = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs / "tasks"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(_free_port()),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only our triggered run, no cron run
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),  # one secret shared by all components
        "AIRFLOW__CORE__FERNET_KEY": "",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|ingest)\..*",
        "SS4GL_RETRY_DELAY_SECONDS": "1",
        "EUROSTAT_BACKOFF_SCALE": "0.001",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")])),
        "NO_COLOR": "1",
    }
    from cryptography.fernet import Fernet

    test_only["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

    procs = Processes(logs)
    with ReplayServer(SAMPLES_DIR / "eurostat") as replay:
        overrides["EUROSTAT_BASE_URL"] = replay.base_url
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "WAREHOUSE_URL"}
        env.update({k: v for k, v in compose.items() if not k.startswith("_PIP")})
        env.update(overrides)
        env.update(test_only)
        worker_env = {
            **env,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.ops.celery_hostname.worker_hostname",
            "SS4GL_TEST_WORKER_HOSTNAME": worker_name,
        }
        try:
            t0 = time.monotonic()
            # Fail fast, with the real reason, when the installed Celery cannot run Airflow's Celery executor.
            probe = subprocess.run(
                [sys.executable, "-c", "import airflow.providers.celery.executors.celery_executor"],
                env=env,
                cwd=REPO_DIR,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert probe.returncode == 0, (
                "the Celery executor cannot be imported: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
            )
            run_cli(["db", "migrate"], env, timeout=300)
            run_cli(["pools", "set", "eurostat", "2", "Concurrent Eurostat API calls"], env)
            serve_airflow(
                procs,
                env,
                api_port,
                meta_url,
                workers=(
                    (
                        "worker",
                        [
                            "celery",
                            "worker",
                            "--concurrency",
                            "2",
                            "--skip-serve-logs",
                            "--celery-hostname",
                            f"{worker_name}@%h",
                            "--without-mingle",
                            "--without-gossip",
                        ],
                        worker_env,
                    ),
                ),
            )
            run_id = f"manual__celery_{uuid.uuid4().hex[:8]}"
            run_cli(["dags", "trigger", DAG_ID, "--logical-date", LOGICAL_DATE, "--run-id", run_id], env)
            run_cli(["dags", "unpause", DAG_ID], env)

            def finished():
                rows = query(meta_url, "select state from dag_run where dag_id = %s and run_id = %s", DAG_ID, run_id)
                return rows and rows[0][0] in ("success", "failed") and rows[0][0]

            try:
                state = wait_for(f"dag run {run_id}", finished, RUN_TIMEOUT, procs, every=5)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_diagnostics(meta_url, run_id, procs)}") from None
            tis = query(
                meta_url,
                "select task_id, map_index, state, hostname, try_number from task_instance"
                " where dag_id = %s and run_id = %s order by 1, 2",
                DAG_ID,
                run_id,
            )
            assert state == "success", f"dag run {state}\n{_diagnostics(meta_url, run_id, procs)}"
            duration = time.monotonic() - t0

            # `airflow backfill create` through the scheduler: one nightly slot (the next day, 01:30 Brussels),
            # replayed from the archive that the run above filled, on the same Celery worker.
            run_cli(
                [
                    "backfill",
                    "create",
                    "--dag-id",
                    DAG_ID,
                    "--from-date",
                    BACKFILL_FROM,
                    "--to-date",
                    BACKFILL_TO,
                    "--max-active-runs",
                    "1",
                ],
                env,
            )

            def backfill_finished():
                rows = query(
                    meta_url, "select run_id, state from dag_run where dag_id = %s and run_type = 'backfill'", DAG_ID
                )
                return len(rows) == 1 and rows[0][1] in ("success", "failed") and rows[0]

            try:
                backfill_run, backfill_state = wait_for(
                    "the backfill run", backfill_finished, RUN_TIMEOUT, procs, every=5
                )
            except AssertionError as exc:
                started = query(
                    meta_url, "select run_id from dag_run where dag_id = %s and run_type = 'backfill'", DAG_ID
                )
                where = started[0][0] if started else run_id
                raise AssertionError(f"{exc}\n{_diagnostics(meta_url, where, procs)}") from None
            assert backfill_state == "success", _diagnostics(meta_url, backfill_run, procs)
            backfill_hosts = query(
                meta_url,
                "select distinct hostname from task_instance where run_id = %s"
                " and state = 'success' and task_id not like '%%_watcher_done'",
                backfill_run,
            )
        finally:
            procs.stop_all()

    # Every task instance ran, succeeded, and ran on the Celery worker (its hostname_callable) ...
    n_datasets = len(load_catalogue().datasets)
    expected = {
        "migrate_warehouse",
        "eurostat.plan",
        "eurostat.extract",
        "eurostat.validate",
        "eurostat.load",
        "surveys.extract",
        "surveys.validate",
        "surveys.load",
        "publish",
    }
    task_ids = {t[0] for t in tis}
    assert expected <= task_ids, f"missing task instances: {expected - task_ids}"
    assert task_ids - expected, "no dbt task ran"  # dbt_needed, the dbt group (dbt.*), build_docs, ...
    assert sum(1 for t in tis if t[0] == "eurostat.extract") == n_datasets
    assert all(t[2] == "success" for t in tis), tis
    # Empty operators (Cosmos' `dbt_producer_watcher_done` marker) are completed by the scheduler itself.
    executed = [t for t in tis if not t[0].endswith("_watcher_done")]
    assert {t[3] for t in executed} == {worker_name}, f"task instances ran elsewhere than the Celery worker: {tis}"
    # ... which received them from the broker and stored their results in the result backend.
    worker_log = procs.log("worker")
    assert worker_log.count("Executing workload in Celery") >= len(executed)
    for task_id in {t[0] for t in executed}:
        assert f"task_id='{task_id}'" in worker_log, f"{task_id} not executed by the Celery worker"
    done = query(meta_url, "select status, count(*) from celery_taskmeta group by 1")
    assert dict(done).get("SUCCESS", 0) >= len(executed), done

    # The warehouse marts are populated for the run.
    assert query(fresh_db, "select count(*) from marts.mart_partnership_indicators")[0][0] > 0
    clusters = {r[0] for r in query(fresh_db, "select distinct cluster_id from marts.mart_partnership_indicators")}
    assert clusters == CLUSTERS
    datasets = {r[0] for r in query(fresh_db, "select distinct dataset from raw.eurostat_observations")}
    assert datasets == {d.code for d in load_catalogue().datasets}
    assert query(fresh_db, "select count(*) from audit.run_summaries where run_id = %s", run_id)[0][0] == 1

    # The backfill run replayed every dataset from the archive (no download) and ran on the worker.
    assert backfill_hosts == [(worker_name,)], backfill_hosts
    decisions = query(
        fresh_db,
        "select source, decision, count(*) from audit.dataset_checks where run_id = %s group by 1, 2",
        backfill_run,
    )
    assert ("eurostat", "replay", n_datasets) in decisions, decisions
    assert not [d for d in decisions if d[1] == "fetch"], decisions
    assert query(
        fresh_db, "select logical_date::text from audit.dataset_checks where run_id = %s limit 1", backfill_run
    ) == [("2026-11-27",)]
    print(f"celery run {run_id}: {len(tis)} task instances on {worker_name} in {duration:.0f} s")


def _diagnostics(meta_url: str, run_id: str, procs: Processes) -> str:
    try:
        tis = query(
            meta_url,
            "select task_id, map_index, state, hostname, try_number from task_instance where run_id = %s order by 1, 2",
            run_id,
        )
    except psycopg2.Error as exc:
        tis = [f"cannot read task instances: {exc}"]
    parts = ["task instances:", *map(str, tis)]
    for name in procs.procs:
        parts += [f"--- {name} (tail)", procs.log(name)[-2500:]]
    task_logs = sorted((procs.logs / "tasks").rglob("*.log")) if (procs.logs / "tasks").exists() else []
    for path in task_logs:
        text = path.read_text(errors="replace")
        if "error" in text.lower():
            parts += [f"--- {path.relative_to(procs.logs)} (tail)", text[-2000:]]
    return "\n".join(parts)
