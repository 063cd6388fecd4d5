"""Overlapping runs are safe (#15.6): a nightly run and a backfill run of ``ss4gl_nightly`` at the same time, on a
real scheduler, handling the same content, lose and duplicate nothing.

NEEDS POSTGRESQL on 127.0.0.1:5432 with trust auth for user ``postgres`` (Airflow metadata); FAILS, never skips,
without it. Real subprocesses with a temporary AIRFLOW_HOME, as in tests/ops/test_celery.py (same helpers, the
compose environment) but with the LocalExecutor (parallelism 8): ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer``. Eurostat is the loopback replay server of the bundled samples, the inbox the
bundled one, the warehouse a throwaway database on the test session's embedded Postgres.

An earlier night archived and registered every source (extract only, run in-process before the runs start), so
that a backfill of that date (2026-11-25) replays exactly the content the nightly of 2026-11-26 fetches again: the
two runs register, validate and load the same batches (same batch ids) at the same time. Before batch bookkeeping
was per run, the later registration took the batch away from the other run, whose validate or load then found
nothing (measured with that bookkeeping: the nightly's summary counted 8 of its 14 Eurostat batches). Now: both
runs succeed, each run's summary counts all of its own batches, raw holds exactly one copy of every partition's
rows, the marts are built. About 3.5 to 4.5 minutes on 2 CPUs (start-up ~25 s; ~90 task instances per run).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid

import pytest

from ingest.config import REPO_DIR, SAMPLES_DIR, load_catalogue
from ingest.eurostat.replay import ReplayServer
from ingest.tasks.common import RunContext
from tests.conftest import query
from tests.integration._support import SURVEY_TABLES
from tests.ops.test_celery import (
    AIRFLOW,
    Processes,
    _diagnostics,
    _free_port,
    compose_airflow_env,
    serve_airflow,
    wait_for,
)

DAG_ID = "ss4gl_nightly"
SEEDED = "2026-11-25"  # the earlier night whose receipts the backfill replays
NIGHTLY = "2026-11-26T00:30:00+00:00"  # 01:30 Europe/Brussels
BACKFILL_FROM, BACKFILL_TO = "2026-11-24T12:00:00+00:00", "2026-11-25T12:00:00+00:00"  # one slot: 11-25 00:30Z
RUN_TIMEOUT = int(os.environ.get("SS4GL_OVERLAP_RUN_TIMEOUT", 10 * 60))
INGEST_TASKS = (
    "eurostat.extract",
    "eurostat.validate",
    "eurostat.load",
    "surveys.extract",
    "surveys.validate",
    "surveys.load",
)


def cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """An ``airflow`` CLI call started in the background (several at once save their start-up time)."""
    return subprocess.Popen(
        AIRFLOW + args, env=env, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def done(*calls: subprocess.Popen, timeout: int = 300) -> None:
    for call in calls:
        out, _ = call.communicate(timeout=timeout)
        assert call.returncode == 0, f"airflow {' '.join(call.args[3:6])} failed:\n{out[-3000:]}"


def seed_receipts(run_id: str, logical_date: str) -> dict:
    """An earlier night's extract stage: archive every Eurostat dataset and inbox file, register receipts."""
    from ingest.tasks import eurostat, surveys

    ctx = RunContext(run_id, logical_date)
    datasets = eurostat.plan(ctx)
    for code in datasets:
        eurostat.extract(ctx, code)
    return {"datasets": len(datasets), **surveys.extract(ctx, inbox=str(SAMPLES_DIR / "inbox"))}


def airflow_env(fresh_db: str, metadata_db: str, state, logs, home, api_port: int, replay_url: str) -> dict:
    """docker-compose's x-airflow-common environment with local hosts, and the LocalExecutor."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "WAREHOUSE_URL"}
    # One machine, the LocalExecutor: storage is the local state folder (compose's is an object store host).
    compose = {k: v for k, v in compose_airflow_env().items() if not k.startswith(("_PIP", "AWS_", "SS4GL_STORAGE"))}
    env.update(compose)
    from cryptography.fernet import Fernet

    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DIR / "dags"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{metadata_db}",
            "AIRFLOW_CONN_WAREHOUSE": fresh_db,
            "SS4GL_HOME": str(state),
            "SS4GL_PSEUDONYM_KEY": "overlap-test-key-not-a-secret",
            "SURVEY_INBOX": str(SAMPLES_DIR / "inbox"),
            "EUROSTAT_BASE_URL": replay_url,
            # test-only: isolation from other runs on this machine
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs / "tasks"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(_free_port()),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only our two runs, no cron run
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|ingest)\..*",
            "SS4GL_RETRY_DELAY_SECONDS": "1",
            "EUROSTAT_BACKOFF_SCALE": "0.001",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")])),
            "NO_COLOR": "1",
        }
    )
    return env


@pytest.mark.timeout(RUN_TIMEOUT + 600)
def test_a_nightly_and_a_backfill_at_the_same_time_lose_and_duplicate_nothing(
    fresh_db, metadata_db, tmp_path, monkeypatch
):
    home, logs, state = tmp_path / "airflow", tmp_path / "logs", tmp_path / "state"
    for d in (home, logs, state):
        d.mkdir()
    meta_url = f"postgresql://postgres@127.0.0.1:5432/{metadata_db}"
    api_port = _free_port()
    procs = Processes(logs)
    n_datasets = len(load_catalogue().datasets)
    t0 = time.monotonic()
    with ReplayServer(SAMPLES_DIR / "eurostat") as replay:
        env = airflow_env(fresh_db, metadata_db, state, logs, home, api_port, replay.base_url)
        phases: dict[str, float] = {}
        try:
            # The metadata database is migrated while the earlier night's extract runs in this process (into the
            # same state folder and warehouse the Airflow tasks use).
            migrating = cli(["db", "migrate"], env)
            for key in ("SS4GL_HOME", "EUROSTAT_BASE_URL", "SURVEY_INBOX"):
                monkeypatch.setenv(key, env[key])
            seeded = seed_receipts(f"seed__{SEEDED}", SEEDED)
            assert seeded["datasets"] == n_datasets and seeded["new"] > 0, seeded
            phases["seeded"] = time.monotonic() - t0
            done(migrating)
            phases["migrated"] = time.monotonic() - t0
            pool = cli(["pools", "set", "eurostat", "2", "Concurrent Eurostat API calls"], env)
            serve_airflow(procs, env, api_port, meta_url)
            done(pool)
            phases["serialised"] = time.monotonic() - t0
            nightly_run = f"manual__overlap_{uuid.uuid4().hex[:8]}"
            # Both at once: the nightly run and a backfill of the night before (a backfill is not held back by
            # the DAG's max_active_runs); no task is queued before the unpause.
            done(
                cli(["dags", "trigger", DAG_ID, "--logical-date", NIGHTLY, "--run-id", nightly_run], env),
                cli(
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
                ),
                cli(["dags", "unpause", DAG_ID], env),
            )
            phases["triggered"] = time.monotonic() - t0

            def finished():
                rows = query(meta_url, "select run_id, run_type, state from dag_run where dag_id = %s", DAG_ID)
                ended = [r for r in rows if r[2] in ("success", "failed")]
                return len(rows) == 2 and len(ended) == 2 and rows

            try:
                runs = wait_for("the nightly and the backfill run", finished, RUN_TIMEOUT, procs, every=5)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_diagnostics(meta_url, nightly_run, procs)}") from None
            phases["finished"] = time.monotonic() - t0
            backfill_run = next(r[0] for r in runs if r[1] == "backfill")
            for run_id, _type, run_state in runs:
                assert run_state == "success", f"{run_id} {run_state}\n{_diagnostics(meta_url, run_id, procs)}"
            windows = {
                run_id: query(
                    meta_url,
                    "select min(start_date), max(end_date) from task_instance where run_id = %s and task_id = any(%s)",
                    run_id,
                    list(INGEST_TASKS),
                )[0]
                for run_id in (nightly_run, backfill_run)
            }
            timeline = query(
                meta_url,
                "select run_id, min(start_date), max(end_date) filter (where task_id = any(%s)),"
                " max(end_date) filter (where task_id = 'dbt.dbt_producer_watcher')"
                " - min(start_date) filter (where task_id = 'dbt.dbt_producer_watcher'),"
                " max(end_date) from task_instance group by 1",
                list(INGEST_TASKS),
            )
            tis = query(
                meta_url,
                "select run_id, task_id, count(*),"
                " count(*) filter (where state in ('success', 'skipped'))"
                " from task_instance where dag_id = %s group by 1, 2",
                DAG_ID,
            )
        finally:
            procs.stop_all()
    duration = time.monotonic() - t0

    # The two runs really overlapped: extract to load of one ran while the other's did.
    (n_start, n_end), (b_start, b_end) = windows[nightly_run], windows[backfill_run]
    assert max(n_start, b_start) < min(n_end, b_end), f"the runs did not overlap: {windows}"
    for run_id in (nightly_run, backfill_run):
        mine = {t: (n, ok) for r, t, n, ok in tis if r == run_id}
        assert mine["eurostat.extract"] == (n_datasets, n_datasets), mine
        assert all(ok == n for t, (n, ok) in mine.items() if not t.endswith("_watcher_done")), mine

    # Every batch of either run, once: each content has one row in audit.batches, loaded.
    expected = {
        source: n
        for source, n in query(
            fresh_db, "select source, count(*) from audit.batch_receipts where logical_date = %s group by 1", SEEDED
        )
    }
    assert expected == {"eurostat": n_datasets, "surveys": seeded["new"]}, expected
    assert (
        dict(query(fresh_db, "select source, count(*) from audit.batches where status = 'loaded' group by 1"))
        == expected
    )

    # Each run's bookkeeping and summary hold all of its own batches, loaded, and the same rows validated.
    raw_rows = {
        "eurostat": query(fresh_db, "select count(*) from raw.eurostat_observations")[0][0],
        "surveys": sum(
            query(fresh_db, f"select count(*) from raw.{t}")[0][0]  # noqa: S608
            for t in SURVEY_TABLES
        ),
    }
    summaries = {}
    for run_id in (nightly_run, backfill_run):
        assert (
            dict(
                query(
                    fresh_db,
                    "select source, count(*) from audit.run_batches where run_id = %s and status = 'loaded' group by 1",
                    run_id,
                )
            )
            == expected
        ), run_id
        (summary,) = query(fresh_db, "select summary from audit.run_summaries where run_id = %s", run_id)[0]
        summaries[run_id] = summary
        assert summary["outcome"] == "success", summary
        assert summary["missing_marts"] == [] and summary["quarantined"] == [], summary
        for source, n in expected.items():
            s = summary["sources"][source]
            assert s["batches"] == {"loaded": n}, (run_id, source, s)
            # Every run validated every partition's rows; raw holds exactly one copy of them.
            assert s["rows_validated"] == raw_rows[source] > 0, (run_id, source, s, raw_rows)
            assert s["rows_loaded"] <= raw_rows[source], (run_id, source, s, raw_rows)
    for source in expected:  # every row written by one run or the other
        assert sum(s["sources"][source]["rows_loaded"] for s in summaries.values()) >= raw_rows[source]

    # Raw: per partition, one batch and exactly its rows.
    partitions = query(
        fresh_db,
        "select o.dataset, count(*), count(distinct o.batch_id), min(b.rows_parsed)"
        " from raw.eurostat_observations o join audit.batches b using (batch_id)"
        " group by 1 order by 1",
    )
    assert len(partitions) == n_datasets
    assert all(n == rows and batches == 1 for _ds, n, batches, rows in partitions), partitions
    every_file = " union all ".join(f"select file_sha256, batch_id from raw.{t}" for t in SURVEY_TABLES)  # noqa: S608
    per_file = query(fresh_db, f"select file_sha256, count(distinct batch_id) from ({every_file}) p group by 1")  # noqa: S608
    assert len(per_file) == expected["surveys"] and all(n == 1 for _f, n in per_file), per_file
    assert not [p for p in (state / "staging").rglob("*") if p.is_file()], "staged files left behind"

    # The marts are built.
    assert query(fresh_db, "select count(*) from marts.mart_partnership_indicators")[0][0] > 0
    assert query(fresh_db, "select count(*) from marts.mart_sme_needs")[0][0] > 0
    print(
        f"overlap: {nightly_run} and {backfill_run} in {duration:.0f} s; phases (s) "
        + ", ".join(f"{k} {v:.0f}" for k, v in phases.items())
    )
    origin = min(t[1] for t in timeline)
    for run_id, start, ingested, dbt_build, end in timeline:
        build = f"{dbt_build.total_seconds():.0f} s" if dbt_build else "skipped"
        at = {
            name: f"+{(t - origin).total_seconds():.0f} s"
            for name, t in (("start", start), ("end", end), ("ingested", ingested))
        }
        print(f"  {run_id}: start {at['start']}, ingested {at['ingested']}, dbt build {build}, end {at['end']}")
