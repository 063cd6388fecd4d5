"""Fault injection with real processes (no mocks): what the nightly run does when things break.

1. ``kill -9`` of a load in the middle of its COPY: nothing half-loaded is visible, the rerun gives exactly the
   rows of a clean load.
2. The warehouse Postgres restarts during a run: the network task retries and the run succeeds.
3. Eurostat answers 503 to the first calls: the client retries, then Airflow retries the task; the run succeeds.
4. The archive cannot be written (not a directory / file size limit, both hit root too): one clear line, nothing
   loaded.

(2) and (3) share one ``ss4gl run`` (a full local run costs minutes on a shared CI machine) on a SEPARATE
embedded Postgres server (the session's server is shared by the other tests and must not be restarted).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import psycopg2
import pytest

from ingest.config import REPO_DIR, SAMPLES_DIR, load_catalogue
from ingest.eurostat.replay import ReplayServer
from tests.conftest import create_database, drop_database, query

PY = sys.executable


def table_checksum(url: str, table: str, where: str = "true") -> tuple[int, str]:
    """(row count, md5 over the rows in a canonical order)."""
    rows = query(
        url,
        f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"  # noqa: S608
        f" from {table} t where {where}",
    )
    return rows[0][0], rows[0][1]


# =============================================================================================== 1. kill -9
DATASET = "zz_fault_copy"  # a partition of raw.eurostat_observations no catalogue dataset uses
RUN_ID = "ops_kill_test"


def synthetic_rows(n: int, version: str) -> pd.DataFrame:
    """Rows shaped like raw.eurostat_observations (``batch_id`` is set by the load)."""
    i = range(n)
    return pd.DataFrame(
        {
            "dataset": DATASET,
            "series_key": [f"unit=U{k % 97},nace=N{k % 13}" for k in i],
            "dims": [f'{{"unit":"U{k % 97}","nace":"N{k % 13}"}}' for k in i],
            "geo": [f"G{k // 1261}" for k in i],
            "time": [str(1990 + k % 13) for k in i],
            "value": [round((k * 7919 % 100003) / 7.0 + (0.5 if version == "new" else 0.0), 4) for k in i],
            "obs_status": [None if k % 5 else "p" for k in i],
            "conf_status": None,
            "source_updated_at": pd.Timestamp("2026-11-20T23:00:00Z"),
        }
    )


def stage_batch(url: str, home: Path, frame: pd.DataFrame, sha: str, monkeypatch) -> str:
    """What eurostat.validate leaves behind: a parquet in staging and a 'validated' batch in audit.batches."""
    from ingest.tasks.common import Batch, RunContext, record_batch, stage_write

    monkeypatch.setenv("SS4GL_HOME", str(home))
    batch = Batch(
        source="eurostat",
        object=DATASET,
        sha256=[sha],
        rows=len(frame),
        status="validated",
        meta={"tables": ["eurostat_observations"], "partition": {"dataset": DATASET}, "toc_last_update": "2026-11-20"},
    )
    stage_write(frame, batch, "eurostat_observations", RunContext(RUN_ID, "2026-11-26"))
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        record_batch(cur, RunContext(RUN_ID, "2026-11-26"), batch)
    conn.close()
    return batch.batch_id


LOADER = textwrap.dedent("""
    import io, os, time
    import ingest.load
    if os.environ.get("SS4GL_TEST_SLOW_COPY"):
        # Test harness only: feed COPY slowly (8 kB every 20 ms) so that it is surely in progress when killed.
        class SlowBuffer(io.BytesIO):
            def read(self, size=-1):
                time.sleep(0.02)
                return super().read(size)
        class _io:
            StringIO = io.StringIO
            BytesIO = SlowBuffer
        ingest.load.io = _io
    from ingest.tasks import eurostat, gate
    from ingest.tasks.common import RunContext
    ctx = RunContext(os.environ["SS4GL_TEST_RUN_ID"], "2026-11-26")
    print(gate.load(ctx, "eurostat", after_load=eurostat.remember_loaded), flush=True)
""")


def run_loader(url: str, home: Path, slow: bool = False, **kw) -> subprocess.Popen:
    env = {
        **os.environ,
        "WAREHOUSE_URL": url + "?application_name=ss4gl_fault_loader",
        "SS4GL_HOME": str(home),
        "SS4GL_TEST_RUN_ID": RUN_ID,
    }
    if slow:
        env["SS4GL_TEST_SLOW_COPY"] = "1"
    return subprocess.Popen(
        [PY, "-c", LOADER], env=env, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def test_sigkill_during_copy_then_rerun_equals_clean_load(fresh_db, warehouse_url, tmp_path, monkeypatch):
    from ingest.load import replace_partitions

    old, new = synthetic_rows(2_000, "old"), synthetic_rows(30_000, "new")
    clean_db = create_database(warehouse_url)
    try:
        # Both warehouses hold a previous version of the partition, then get the same validated batch staged.
        for url in (fresh_db, clean_db):
            conn = psycopg2.connect(url)
            replace_partitions(conn, {"eurostat_observations": old.assign(batch_id="previous")}, {"dataset": DATASET})
            conn.close()
        before = table_checksum(fresh_db, "raw.eurostat_observations")
        assert before[0] == 2_000
        batch_id = stage_batch(fresh_db, tmp_path / "victim", new, "f" * 64, monkeypatch)
        assert stage_batch(clean_db, tmp_path / "clean", new, "f" * 64, monkeypatch) == batch_id

        # Clean, uninterrupted load (reference).
        ref = run_loader(clean_db, tmp_path / "clean")
        out, err = ref.communicate(timeout=180)
        assert ref.returncode == 0, err[-3000:]

        # Victim: kill -9 while pg_stat_progress_copy shows rows of its COPY already received.
        victim = run_loader(fresh_db, tmp_path / "victim", slow=True)
        progress = (
            "select a.pid, p.tuples_processed from pg_stat_activity a join pg_stat_progress_copy p using (pid)"
            " where a.application_name = 'ss4gl_fault_loader' and a.query ilike 'copy %%'"
        )
        deadline, seen = time.monotonic() + 120, None
        while time.monotonic() < deadline and victim.poll() is None:
            rows = query(fresh_db, progress)
            if rows and rows[0][1] > 1000:
                seen = rows[0]
                break
            time.sleep(0.05)
        assert seen, f"never saw the COPY in progress: {victim.poll()} {victim.stderr.read() if victim.poll() else ''}"
        backend_pid, copied = seen
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        victim.stdout.close()
        victim.stderr.close()
        assert victim.returncode == -signal.SIGKILL
        assert 1000 < copied < len(new), f"the kill did not land mid-COPY ({copied} rows)"

        # The server aborts the orphaned transaction; nothing of the batch is visible, the old rows are intact.
        deadline = time.monotonic() + 60
        while query(fresh_db, "select 1 from pg_stat_activity where pid = %s", backend_pid):
            assert time.monotonic() < deadline, "the killed load's backend is still there after 60 s"
            time.sleep(0.2)
        assert table_checksum(fresh_db, "raw.eurostat_observations") == before
        assert query(fresh_db, "select count(*) from raw.eurostat_observations where batch_id = %s", batch_id) == [(0,)]
        assert query(fresh_db, "select status, rows_loaded from audit.batches where batch_id = %s", batch_id) == [
            ("validated", None)
        ]
        assert query(fresh_db, "select count(*) from audit.source_state where object = %s", DATASET) == [(0,)]
        assert query(fresh_db, "select count(*) from pg_locks where locktype = 'advisory'") == [(0,)]

        # Rerun: the same rows as the clean load, byte for byte.
        rerun = run_loader(fresh_db, tmp_path / "victim")
        out, err = rerun.communicate(timeout=180)
        assert rerun.returncode == 0, err[-3000:]
        assert "'rows': 30000" in out
        after, clean = (
            table_checksum(fresh_db, "raw.eurostat_observations"),
            table_checksum(clean_db, "raw.eurostat_observations"),
        )
        assert after == clean and after[0] == 30_000 and after != before
        state = "select source, object, batch_id, toc_last_update from audit.source_state order by 1, 2"
        assert query(fresh_db, state) == query(clean_db, state) != []
        batches = "select batch_id, status, rows_parsed, rows_loaded from audit.batches order by 1"
        assert query(fresh_db, batches) == query(clean_db, batches) == [(batch_id, "loaded", 30_000, 30_000)]
    finally:
        drop_database(warehouse_url, clean_db)


# ====================================================================== 2 + 3. Postgres restart and 503s in one run
CHAOS_DATE = "2026-11-25"
FLAKY_DATASET = "nama_10r_2gdp"  # a bulk dataset (catalogue `bulk: true`): its file is streamed, 503s archived too
FLAKY_PATH = f"/sdmx/2.1/data/{FLAKY_DATASET}"
FLAKY_503 = 7  # the client makes 5 attempts: the first task try fails, the Airflow retry gets 2 more, then data
TOC_503 = 2  # the preflight (ignores the status) and the plan's first attempt


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory):
    """One ``ss4gl run`` (own replay server, online mode) whose warehouse Postgres is restarted under it."""
    from ingest.warehouse import EmbeddedServer

    root = tmp_path_factory.mktemp("chaos")
    # The server runs as an unprivileged OS user when we are root: its folder must not be under pytest's
    # basetemp, which every new pytest session (e.g. a concurrent one) resets to mode 0700.
    pg_root = Path(tempfile.mkdtemp(prefix="ss4gl-ops-pg-"))
    os.chmod(pg_root, 0o755)
    server = EmbeddedServer(pg_root / "pg")
    url = server.ensure_running()
    home = root / "state"
    events: dict = {
        "stopped_at": None,
        "started_at": None,
        "failure_seen": False,
        "stop_returned": None,
        "still_up_after_stop": None,
    }
    replay = ReplayServer(SAMPLES_DIR / "eurostat").start()
    body = b"<html><body>503 Service Unavailable</body></html>"
    replay.script(FLAKY_PATH, [(503, "text/html", body)] * FLAKY_503)
    replay.script("/catalogue/toc/txt", [(503, "text/html", body)] * TOC_503)
    env = {
        **os.environ,
        "WAREHOUSE_URL": url,
        "SS4GL_HOME": str(home),
        "EUROSTAT_BASE_URL": replay.base_url,
        "SURVEY_INBOX": str(SAMPLES_DIR / "inbox"),
        "SS4GL_RETRY_DELAY_SECONDS": "1",
        "EUROSTAT_BACKOFF_SCALE": "0.001",
    }
    env.pop("OFFLINE", None)
    import airflow

    marker = home / "airflow" / f".migrated-{airflow.__version__}"
    run_log = home / "logs" / f"run-{CHAOS_DATE}.log"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [PY, "-m", "ingest.cli", "run", "--date", CHAOS_DATE],
        env=env,
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: dict = {}
    reader = threading.Thread(target=lambda: output.update(zip(("stdout", "stderr"), proc.communicate(), strict=True)))
    reader.start()
    try:
        # `ss4gl run` migrates the warehouse, then prepares Airflow (marker), parses the DAG and runs it: stop
        # Postgres after the first, before the first task (migrate_warehouse) ...
        while not marker.exists():
            assert proc.poll() is None, "ss4gl run ended before Airflow was prepared"
            assert time.monotonic() - t0 < 300, "Airflow preparation took over 300 s"
            time.sleep(0.1)
        events["stop_returned"] = pg_ctl(server, "stop", "-m", "fast")
        events["stopped_at"] = time.monotonic() - t0
        try:
            psycopg2.connect(url, connect_timeout=5).close()
            events["still_up_after_stop"] = True
        except psycopg2.OperationalError:
            events["still_up_after_stop"] = False
        # ... and start it again once migrate_warehouse has failed on it (then the retry must succeed).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if run_log.exists() and "cannot connect to the warehouse" in run_log.read_text(errors="replace"):
                events["failure_seen"] = True
                break
            time.sleep(0.1)
        events["start_returned"] = pg_ctl(server, "start", "-l", str(server.log_file))
        events["started_at"] = time.monotonic() - t0
        reader.join(900)
        assert not reader.is_alive(), "ss4gl run did not finish within 15 minutes"
        events["duration"] = time.monotonic() - t0
        yield {"proc": proc, **output, "url": url, "home": home, "log": run_log, "replay": replay, **events}
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(30)
        replay.stop()
        server.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def pg_ctl(server, action: str, *args: str) -> str:
    """Stop/start the server as an operator would (pg_ctl), not through our own EmbeddedServer helper: its
    start refuses a port that is still in TIME_WAIT right after a stop (see the report of this test)."""
    from ingest.warehouse import SERVER_OS_USER

    user = SERVER_OS_USER if os.geteuid() == 0 else None
    res = subprocess.run(
        [server._bin("pg_ctl"), "-D", str(server.pgdata), *args, "-w", "-t", "60", action],
        user=user,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert res.returncode == 0, f"pg_ctl {action} failed: {res.stdout} {res.stderr}"
    return res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "ok"


def airflow_tis(home: Path, task_id: str) -> list[tuple]:
    conn = sqlite3.connect(home / "airflow" / "airflow.db")
    try:
        # The chaos run's Airflow home is fresh: its one DAG run is the chaos run.
        return conn.execute(
            "select map_index, state, try_number from task_instance where task_id = ? order by map_index", (task_id,)
        ).fetchall()
    finally:
        conn.close()


def test_run_succeeds_after_a_warehouse_restart(chaos_run):
    res = chaos_run["proc"]
    assert res.returncode == 0, chaos_run["stdout"][-3000:] + chaos_run["stderr"][-3000:]
    assert not chaos_run["still_up_after_stop"], chaos_run
    assert chaos_run["failure_seen"], f"migrate_warehouse never hit the stopped server: {chaos_run}"
    log = chaos_run["log"].read_text(errors="replace")
    assert "cannot connect to the warehouse at 127.0.0.1" in log
    [(_, state, tries)] = airflow_tis(chaos_run["home"], "migrate_warehouse")
    assert state == "success" and tries >= 2, (state, tries)
    assert query(chaos_run["url"], "select count(*) from marts.mart_partnership_indicators")[0][0] > 0
    assert "RUN FAILED" not in chaos_run["stderr"] and "ALERT" not in chaos_run["stderr"]


def test_run_succeeds_when_eurostat_answers_503_first(chaos_run):
    assert chaos_run["proc"].returncode == 0, chaos_run["stderr"][-3000:]
    replay, url = chaos_run["replay"], chaos_run["url"]
    calls = replay.calls(FLAKY_PATH)
    assert [c.action for c in calls] == ["scripted"] * FLAKY_503 + ["normal"], [c.action for c in calls]
    # The first task try gave up after the client's attempts; Airflow's retry got the data.
    codes = [d.code for d in load_catalogue().datasets]
    tries = {codes[m]: (s, t) for m, s, t in airflow_tis(chaos_run["home"], "eurostat.extract")}
    assert tries[FLAKY_DATASET] == ("success", 2), tries
    assert all(s == "success" for s, _ in tries.values()), tries
    [(_, plan_state, plan_tries)] = airflow_tis(chaos_run["home"], "eurostat.plan")
    assert (plan_state, plan_tries) == ("success", 1)  # its one 503 was absorbed by the client's retry
    # Every 503 body was archived as received, then the data; the dataset is loaded.
    statuses = [
        r[0]
        for r in query(url, "select http_status from audit.fetches where object = %s order by fetch_id", FLAKY_DATASET)
    ]
    assert statuses == [503] * FLAKY_503 + [200], statuses
    assert query(url, "select count(*) from raw.eurostat_observations where dataset = %s", FLAKY_DATASET)[0][0] > 0
    assert query(url, "select status from audit.batches where object = %s", FLAKY_DATASET) == [("loaded",)]


# =============================================================================================== 4. archive
ARCHIVE_ERRORS = {
    # an archive path below a regular file: ENOTDIR, whoever we are (root ignores permission bits)
    "not_a_directory": "Not a directory",
    # RLIMIT_FSIZE: writes past the limit fail with EFBIG, like a full disk or quota, also for root
    "file_size_limit": "File too large",
}

EXTRACT = textwrap.dedent("""
    import resource, signal, sys
    if sys.argv[1] == "file_size_limit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
    from ingest.archive import ArchiveError
    from ingest.tasks import eurostat, surveys
    from ingest.tasks.common import RunContext
    ctx = RunContext("ops_archive_test", "2026-11-26")
    failures = 0
    for name, stage in (("surveys.extract", lambda: surveys.extract(ctx)),
                        ("eurostat.extract", lambda: eurostat.extract(ctx, sys.argv[2]))):
        try:
            stage()
        except ArchiveError as exc:
            failures += 1
            print(f"{name}: {type(exc).__name__}: {exc}")
    sys.exit(0 if failures == 2 else 1)
""")


@pytest.mark.parametrize("fault", sorted(ARCHIVE_ERRORS))
def test_archive_write_failure_is_one_clear_line_and_loads_nothing(fault, fresh_db, tmp_path):
    home = tmp_path / "state"
    home.mkdir()
    if fault == "not_a_directory":
        (tmp_path / "blocker").write_text("a file where the archive folder should be")
        archive = tmp_path / "blocker" / "archive"
    else:
        archive = tmp_path / "archive"
    with ReplayServer(SAMPLES_DIR / "eurostat") as replay:
        env = {
            **os.environ,
            "WAREHOUSE_URL": fresh_db,
            "SS4GL_HOME": str(home),
            "SS4GL_ARCHIVE": str(archive),
            "EUROSTAT_BASE_URL": replay.base_url,
            "SURVEY_INBOX": str(SAMPLES_DIR / "inbox"),
        }
        res = subprocess.run(
            [PY, "-c", EXTRACT, fault, "demo_r_d2jan"],
            env=env,
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2, res.stdout
    for line in lines:
        assert f"ArchiveError: cannot write to archive {archive}: {ARCHIVE_ERRORS[fault]}" in line, line
    # Nothing was registered, so nothing can be validated or loaded.
    for table in ("audit.batches", "audit.fetches", "raw.eurostat_observations"):
        assert query(fresh_db, f"select count(*) from {table}")[0][0] == 0, table  # noqa: S608
    raw_tables = [  # what was received (the partnership's configuration is no receipt: loaded by the database set-up)
        r[0]
        for r in query(fresh_db, "select table_name from information_schema.tables where table_schema = 'raw'")
        if not r[0].startswith("partnership_")
    ]
    for t in raw_tables:
        assert query(fresh_db, f'select count(*) from raw."{t}"')[0][0] == 0, t  # noqa: S608
    if fault == "file_size_limit":  # no partial body was left under its final (content-addressed) name
        bodies = [p for p in (archive / "sha256").rglob("*") if p.is_file()] if archive.exists() else []
        for p in bodies:
            assert hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name + p.name
