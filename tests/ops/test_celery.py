"""Scale-out: ``ss4gl_nightly`` on Airflow 3.3 with the CeleryExecutor and TWO workers that share nothing but the
services (#16.3), as the docker-compose deployment runs it.

NEEDS REDIS on 127.0.0.1:6379 (the Celery broker) and PostgreSQL on 127.0.0.1:5432 with trust auth for user
``postgres`` (Airflow metadata + Celery result backend). When either is missing the test FAILS (it never
skips): CI provides both.

Real subprocesses with a temporary AIRFLOW_HOME: ``airflow db migrate``, ``airflow pools set eurostat 2``, then
``airflow api-server`` (the execution API the Airflow 3 workers talk to), ``airflow scheduler``,
``airflow dag-processor``, ``airflow triggerer`` and two ``airflow celery worker``: worker A takes the queue
``ingest`` (``SS4GL_QUEUES`` routes the extract tasks there), worker B the default queue (validate, load, dbt, docs,
publish); each has its own empty state folder (``SS4GL_HOME``), so what one task hands to the next goes through
the storage, ``SS4GL_STORAGE`` on a real S3 API server on loopback (moto's standalone server). The Airflow
environment is the ``x-airflow-common`` environment of docker-compose.yml with the hosts replaced by local ones
(same names). The test triggers one run for a logical date and waits (bounded) for it to succeed, then checks
where every task instance ran, that the archive and the published docs are in the bucket and nothing of them on
either worker's disk, and that the marts equal, checksum for checksum, those of a local ``ss4gl run`` of the same
date and inputs. Eurostat is the loopback replay server of the bundled samples; the warehouses are throwaway
databases on the test session's embedded Postgres.
Every process group, the metadata database and the Redis database are cleaned up, also on failure.
"""

from __future__ import annotations

import json
import os
import re
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
from tests.conftest import create_database, drop_database, query
from tests.pipeline.test_never_regresses import WALL_CLOCK
from tests.pipeline.test_nightly import mart_checksums, ss4gl
from tests.s3server import S3Server

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
PSEUDONYM_KEY = "celery-test-key-not-a-secret"
INGEST_QUEUE = "ingest"  # worker A: the extract tasks (SS4GL_QUEUES); worker B: the default queue
EXTRACT_TASKS = {"eurostat.extract", "surveys.extract"}


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
    """The ``x-airflow-common`` environment of docker-compose.yml (what every Airflow container gets), interpolated
    as docker-compose does with an empty ``.env``: ``${X:-default}`` is the default, ``${X}`` and ``${X:?msg}`` are
    empty (a test sets what it needs; a literal ``${...}`` would reach the tasks as a value)."""
    doc = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())

    def interpolate(match: re.Match) -> str:
        return match.group("default") or ""

    pattern = re.compile(r"\$\{\w+(?::-(?P<default>[^}]*)|:\?[^}]*)?\}")
    env = {k: pattern.sub(interpolate, str(v)) for k, v in doc["x-airflow-common"]["environment"].items()}
    left = sorted(k for k, v in env.items() if "$" in v)
    assert not left, f"docker-compose.yml: interpolation this helper does not handle in {left}"
    return env


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
@pytest.fixture
def local_run(warehouse_url, tmp_path):
    """The same night run locally (``ss4gl run``, dag.test, bundled samples) into a database of its own: the marts
    the two workers must reproduce."""
    url = create_database(warehouse_url)
    env = {**os.environ, "WAREHOUSE_URL": url, "SS4GL_HOME": str(tmp_path / "local"), "OFFLINE": "1"}
    env["SS4GL_PSEUDONYM_KEY"] = PSEUDONYM_KEY
    env.pop("SS4GL_STORAGE", None)
    res = ss4gl(["run", "--date", LOGICAL_DATE[:10]], env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    yield url
    drop_database(warehouse_url, url)


def worker(name: str, queues: str, env: dict[str, str], state: Path) -> tuple[str, list[str], dict[str, str]]:
    """A Celery worker of its own: its queues, its empty state folder, its hostname (``hostname_callable``)."""
    args = ["celery", "worker", "--concurrency", "2", "--skip-serve-logs", "--queues", queues]
    args += ["--celery-hostname", f"{name}@%h", "--without-mingle", "--without-gossip"]
    worker_env = {
        **env,
        "SS4GL_HOME": str(state),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.ops.celery_hostname.worker_hostname",
        "SS4GL_TEST_WORKER_HOSTNAME": name,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
    }
    return name, args, worker_env


@pytest.mark.timeout(RUN_TIMEOUT + 900)  # the suite's 900 s default is too short for start-up + run + teardown
def test_nightly_dag_runs_on_two_celery_workers_sharing_only_s3(fresh_db, redis_db, metadata_db, local_run, tmp_path):
    """Needs Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432): the whole DAG on a CeleryExecutor with two
    workers that share no disk, storage on S3; then `airflow backfill create` of the next nightly slot."""
    home, logs, state = tmp_path / "airflow", tmp_path / "logs", tmp_path / "state"
    state_a, state_b = tmp_path / "worker-a", tmp_path / "worker-b"
    for d in (home, logs, state, state_a, state_b):
        d.mkdir()
    meta_sqla = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{metadata_db}"
    meta_url = f"postgresql://postgres@127.0.0.1:5432/{metadata_db}"
    api_port = _free_port()
    suffix = uuid.uuid4().hex[:8]
    name_a, name_b = f"ss4gl-worker-a-{suffix}", f"ss4gl-worker-b-{suffix}"

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
        "SS4GL_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "SURVEY_INBOX": str(SAMPLES_DIR / "inbox"),
        "EUROSTAT_BASE_URL": None,  # set below: the replay server
        "SS4GL_STORAGE": None,  # set below: a bucket of the S3 server
        "AWS_ENDPOINT_URL": None,
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_DEFAULT_REGION": None,
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
        "SS4GL_QUEUES": json.dumps({"extract": INGEST_QUEUE}),
        "SS4GL_RETRY_DELAY_SECONDS": "1",
        "EUROSTAT_BACKOFF_SCALE": "0.001",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")])),
        "NO_COLOR": "1",
    }
    from cryptography.fernet import Fernet

    test_only["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

    procs = Processes(logs)
    with ReplayServer(SAMPLES_DIR / "eurostat") as replay, S3Server() as s3:
        bucket = s3.bucket("ss4gl")
        overrides.update(s3.env, EUROSTAT_BASE_URL=replay.base_url, SS4GL_STORAGE=f"s3://{bucket}/state")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "SS4GL_STORAGE"))}
        env.pop("WAREHOUSE_URL", None)
        env.update({k: v for k, v in compose.items() if not k.startswith("_PIP")})
        env.update(overrides)
        env.update(test_only)
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
            default_queue = "default"  # Airflow's [operators] default_queue
            serve_airflow(
                procs,
                env,
                api_port,
                meta_url,
                workers=(worker(name_a, INGEST_QUEUE, env, state_a), worker(name_b, default_queue, env, state_b)),
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
                "select task_id, map_index, state, hostname, try_number, queue from task_instance"
                " where dag_id = %s and run_id = %s order by 1, 2",
                DAG_ID,
                run_id,
            )
            assert state == "success", f"dag run {state}\n{_diagnostics(meta_url, run_id, procs)}"
            duration = time.monotonic() - t0
            bucket_keys = s3.keys(bucket, "state/")

            # `airflow backfill create` through the scheduler: one nightly slot (the next day, 01:30 Brussels),
            # replayed from the archive in the bucket that the run above filled.
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

    # Every task instance ran and succeeded: the extracts on worker A, everything else on worker B.
    n_datasets = len(load_catalogue().datasets)
    expected = {
        "migrate_warehouse",
        "load_partnership",
        "eurostat.plan",
        "eurostat.extract",
        "eurostat.validate",
        "eurostat.load",
        "surveys.extract",
        "surveys.validate",
        "surveys.load",
        "build_docs",
        "publish",
    }
    task_ids = {t[0] for t in tis}
    assert expected <= task_ids, f"missing task instances: {expected - task_ids}"
    assert task_ids - expected, "no dbt task ran"  # dbt_needed, the dbt group (dbt.*), ...
    assert sum(1 for t in tis if t[0] == "eurostat.extract") == n_datasets
    assert all(t[2] == "success" for t in tis), tis
    # Empty operators (Cosmos' `dbt_producer_watcher_done` marker) are completed by the scheduler itself.
    executed = [t for t in tis if not t[0].endswith("_watcher_done")]
    on_a = sorted({t[0] for t in executed if t[3] == name_a})
    on_b = {t[0] for t in executed if t[3] == name_b}
    assert on_a == sorted(EXTRACT_TASKS), f"worker A ({INGEST_QUEUE}) ran {on_a}: {tis}"
    assert on_b == {t[0] for t in executed} - EXTRACT_TASKS, f"task instances ran elsewhere than worker B: {tis}"
    assert {t[5] for t in tis if t[0] in EXTRACT_TASKS} == {INGEST_QUEUE}
    # ... which received them from the broker and stored their results in the result backend.
    logs_of = {name_a: procs.log(name_a), name_b: procs.log(name_b)}
    for task_id, host in {(t[0], t[3]) for t in executed}:
        assert f"task_id='{task_id}'" in logs_of[host], f"{task_id} not executed by the Celery worker {host}"
    done = query(meta_url, "select status, count(*) from celery_taskmeta group by 1")
    assert dict(done).get("SUCCESS", 0) >= len(executed), done

    # What one task handed to the next went through the bucket, never a worker's disk: every archived body, the
    # GX Data Docs, dbt's docs and the dashboard are in S3; neither worker has an archive or staging folder.
    fetched = {r[0] for r in query(fresh_db, "select distinct sha256 from audit.fetches where run_id = %s", run_id)}
    archived = {k.split("/")[-2] + k.split("/")[-1] for k in bucket_keys if k.startswith("state/archive/sha256/")}
    assert fetched and fetched <= archived, f"bodies not in the bucket: {sorted(fetched - archived)[:3]}"
    for key in ("docs/gx/index.html", "dbt/target/index.html", "dbt/target/manifest.json", "dashboard/index.html"):
        assert f"state/{key}" in bucket_keys, f"{key} not published to the bucket"
    assert not [k for k in bucket_keys if k.startswith("state/staging/")], "staged batches left behind"
    for folder in (state_a, state_b):
        local = sorted(p.name for p in folder.iterdir())
        assert not {"archive", "staging"} & set(local), f"{folder.name} kept {local}"

    # The marts equal those of the local run of the same date and inputs, checksum for checksum.
    got, want = mart_checksums(fresh_db, ignore=WALL_CLOCK), mart_checksums(local_run, ignore=WALL_CLOCK)
    assert got == want, (
        f"marts differ from the local run: {sorted(m for m in got.keys() | want.keys() if got.get(m) != want.get(m))}"
    )
    clusters = {r[0] for r in query(fresh_db, "select distinct cluster_id from marts.mart_partnership_indicators")}
    assert clusters == CLUSTERS
    assert query(fresh_db, "select count(*) from audit.run_summaries where run_id = %s", run_id)[0][0] == 1

    # The backfill run replayed every dataset from the archive in the bucket (no download), on the two workers.
    assert set(backfill_hosts) <= {(name_a,), (name_b,)}, backfill_hosts
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
    print(f"celery run {run_id}: {len(tis)} task instances on {name_a} + {name_b} in {duration:.0f} s")


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
