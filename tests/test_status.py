"""``ss4gl status``: the platform's state from the audit trail, its exit status and its freshness rules.

Scenarios are audit rows written directly into a fresh migrated warehouse (``fresh_db``), the command run as a
subprocess as an operator or a monitor runs it, at a fixed ``--now``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
import yaml

from ingest import status
from ingest.config import CATALOGUE_PATH, load_catalogue

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
DATASETS = ("nama_10r_2gdp", "sprt_emp_sex")
# What must never reach the output: a respondent's name and e-mail quoted by a quarantine reason, the e-mail in a
# file name (scrubbed), a free-text answer in raw.
PERSONAL = ("Jan Jansen", "jan.jansen@example.invalid", "my private answer")


def small_catalogue(tmp_path: Path, eurostat_freshness: dict | None = None) -> Path:
    """The bundled catalogue cut to two datasets and one cluster (sme_needs only), freshness keys as given."""
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    raw["clusters"] = [c for c in raw["clusters"] if c["id"] == "indescat"]
    raw["eurostat_datasets"] = [d for d in raw["eurostat_datasets"] if d["code"] in DATASETS]
    raw["sources"]["surveys"]["instruments"] = ["sme_needs"]
    if eurostat_freshness is not None:
        raw["sources"]["eurostat"]["freshness"] = eurostat_freshness
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def execute(url: str, statement: str, *params) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
    finally:
        conn.close()


def run_status(*args: str, catalogue: Path | None = None, url: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if catalogue is not None:
        env["SS4GL_CATALOGUE"] = str(catalogue)
    if url is not None:
        env["WAREHOUSE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "status", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def seed_run(url: str, run_id: str, *, at: datetime, outcome: str = "success", failed_tasks=()) -> None:
    """One nightly run at ``at``: Eurostat checked (one download, one unchanged), a survey file loaded, a survey
    file quarantined, the marts built, its summary written."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            _seed(lambda statement, *params: cur.execute(statement, params), run_id, at, outcome, failed_tasks)
    finally:
        conn.close()


def _seed(run, run_id: str, at: datetime, outcome: str, failed_tasks) -> None:
    day = (at - timedelta(days=1)).date().isoformat()
    start = at - timedelta(minutes=12)
    fetched, skipped = DATASETS
    for code, decision in ((fetched, "fetch"), (skipped, "skip")):
        run(
            "insert into audit.dataset_checks (run_id, logical_date, source, object, decision, reason,"
            " toc_last_update, checked_at) values (%s, %s, 'eurostat', %s, %s, 'test', '2026-04-01', %s)",
            run_id,
            day,
            code,
            decision,
            start,
        )
        batch = f"eurostat:{code}:{run_id[-4:]}"
        run(
            "insert into audit.batches (batch_id, source, object, sha256, run_id, logical_date, status, rows_parsed,"
            " rows_loaded, updated_at) values (%s, 'eurostat', %s, array['ab'], %s, %s, 'loaded', 120, 120, %s)"
            " on conflict do nothing",
            batch,
            code,
            run_id,
            day,
            start + timedelta(minutes=5),
        )
        run(
            "insert into audit.source_state (source, object, batch_id, toc_last_update, loaded_at)"
            " values ('eurostat', %s, %s, '2026-04-01', %s) on conflict (source, object) do update"
            " set batch_id = excluded.batch_id, loaded_at = excluded.loaded_at",
            code,
            batch,
            start + timedelta(minutes=5),
        )
        run(
            "insert into raw.eurostat_observations (dataset, series_key, dims, geo, time, value, source_updated_at,"
            " batch_id) values (%s, 'unit=NR', '{}', 'ES51', '2024', 1, '2026-03-30T09:00:00Z', %s)"
            " on conflict do nothing",
            code,
            batch,
        )
    run(
        "insert into audit.batch_receipts (batch_id, source, object, sha256, run_id, logical_date, received_at)"
        " values (%s, 'eurostat', %s, array['ab'], %s, %s, %s)",
        f"eurostat:{fetched}:{run_id[-4:]}",
        fetched,
        run_id,
        day,
        start + timedelta(minutes=1),
    )
    survey = "surveys:indescat/sme_needs/indescat_necesidades_pymes_2026.xlsx:0123456789abcdef"
    run(
        "insert into audit.batches (batch_id, source, object, sha256, run_id, logical_date, status, rows_parsed,"
        " rows_loaded, updated_at) values (%s, 'surveys', 'indescat/sme_needs/indescat_necesidades_pymes_2026.xlsx',"
        " array['cd'], %s, %s, 'loaded', 40, 40, %s) on conflict do nothing",
        survey,
        run_id,
        day,
        start + timedelta(minutes=6),
    )
    run(
        "insert into audit.batch_receipts (batch_id, source, object, sha256, run_id, logical_date, received_at)"
        " values (%s, 'surveys', 'indescat/sme_needs/indescat_necesidades_pymes_2026.xlsx', array['cd'], %s, %s,"
        " %s)",
        survey,
        run_id,
        day,
        start + timedelta(minutes=2),
    )
    run(
        "insert into raw.survey_sme_respondents (batch_id, file_sha256, cluster, wave, respondent_pid, source_row,"
        " nuts3, nace, size_class, comments) values (%s, 'cd', 'indescat', 2026, 'p1', 2, 'ES511', 'C32', 'micro',"
        " 'my private answer') on conflict do nothing",
        survey,
    )
    bad = "surveys:indescat/sme_needs/answers_jan.jansen@example.invalid.csv:fedcba9876543210"
    run(
        "insert into audit.batches (batch_id, source, object, sha256, run_id, logical_date, status, reason)"
        " values (%s, 'surveys', 'indescat/sme_needs/answers_jan.jansen@example.invalid.csv', array['ef'], %s, %s,"
        " 'quarantined', 'row 3, column name: found Jan Jansen') on conflict do nothing",
        bad,
        run_id,
        day,
    )
    run(
        "insert into audit.quarantine (batch_id, source, object, code, severity, message) values (%s, 'surveys',"
        " 'indescat/sme_needs/answers_jan.jansen@example.invalid.csv', 'unknown_column', 'error',"
        " 'found Jan Jansen')",
        bad,
    )
    run("create table if not exists marts.mart_sme_needs (n int)")
    run(
        "insert into audit.source_state (source, object, batch_id, loaded_at) values ('dbt', 'build', 'fp', %s)"
        " on conflict (source, object) do update set loaded_at = excluded.loaded_at",
        at - timedelta(minutes=2),
    )
    summary = {
        "run_id": run_id,
        "logical_date": day,
        "outcome": outcome,
        "failed_tasks": list(failed_tasks),
        "missing_marts": [],
        "quarantined": [{"source": "surveys", "object": "x", "reason": "found Jan Jansen", "codes": []}],
        "marts": {"mart_sme_needs": 40},
        "marts_schema": "marts",
        "task_seconds": {"publish": 3.0},
    }
    run(
        "insert into audit.run_summaries (run_id, dag_id, logical_date, finished_at, summary)"
        " values (%s, 'ss4gl_nightly', %s, %s, %s) returning run_id",
        run_id,
        day,
        at,
        json.dumps(summary),
    )


def assert_private(proc: subprocess.CompletedProcess) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    for text in PERSONAL:
        assert text not in out, text


# ------------------------------------------------------------------------------------------------- freshness rules
def test_freshness_config_is_read_from_the_bundled_catalogue():
    cat = load_catalogue(CATALOGUE_PATH)
    assert status.eurostat_freshness(cat) == {"warn_after_hours": 30.0, "error_after_hours": 54.0}
    assert {i: status.survey_max_age_days(cat, i) for i in cat.sources["surveys"]["instruments"]} == {
        "state_of_affairs": 400,
        "sme_needs": 400,
    }
    cfg = {"warn_after_hours": 30.0, "error_after_hours": 54.0}
    assert status.grade_eurostat(None, NOW, cfg) == ("never", None)
    assert status.grade_eurostat(NOW - timedelta(hours=10), NOW, cfg)[0] == "ok"
    assert status.grade_eurostat(NOW - timedelta(hours=40), NOW, cfg)[0] == "warn"
    assert status.grade_eurostat(NOW - timedelta(hours=60), NOW, cfg)[0] == "stale"
    assert status.grade_survey(NOW - timedelta(days=380), NOW, 400)[0] == "ok"
    assert status.grade_survey(NOW - timedelta(days=410), NOW, 400)[0] == "stale"


# ------------------------------------------------------------------------------------------------- the command
def test_empty_warehouse_says_so_and_is_stale(fresh_db):
    proc = run_status("--now", NOW.isoformat())
    assert proc.returncode == status.EXIT_STALE, proc.stdout + proc.stderr
    assert_private(proc)
    out = proc.stdout
    assert "no run recorded yet" in out and "NO RUN recorded yet" in out
    assert "STALE eurostat, never checked successfully: sbs_sc_ovw" in out  # every dataset of the catalogue
    assert "STALE surveys, no file loaded yet: indescat/state_of_affairs" in out
    assert "Open quarantines" in out and "current marts built: - (never)" in out
    assert "warehouse: postgresql://" in out and "storage:" in out


def test_a_fresh_successful_run_is_healthy_and_listed(fresh_db, tmp_path):
    catalogue = small_catalogue(tmp_path)
    seed_run(fresh_db, "scheduled__2026-06-14T01:30:00+00:00", at=NOW - timedelta(hours=3))
    proc = run_status("--now", NOW.isoformat(), catalogue=catalogue)
    assert proc.returncode == status.EXIT_OK, proc.stdout + proc.stderr
    assert_private(proc)
    out = proc.stdout
    assert out.startswith("ss4gl status at 2026-06-15 12:00 UTC: HEALTHY (exit 0)")
    run_line = next(ln for ln in out.splitlines() if "scheduled__2026-06-14T01:30:00+00:00" in ln)
    # logical date, mode, outcome (and the quarantine it left), 12 minutes from its first audit record to summary
    assert "2026-06-14" in run_line and "nightly" in run_line and "success (1 quarantined)" in run_line
    assert "12m 00s" in run_line and "2026-06-15 09:00" in run_line
    fetched = next(ln for ln in out.splitlines() if ln.strip().startswith(DATASETS[0]))
    assert "fetch" in fetched and "(2026-06-14)" in fetched and "loaded" in fetched and "120" in fetched
    assert "2026-04-01" in fetched and "2026-03-30" in fetched and "ok (3 h)" in fetched  # TOC, Eurostat stamp
    skipped = next(ln for ln in out.splitlines() if ln.strip().startswith(DATASETS[1]))
    assert "skip" in skipped and "ok (3 h)" in skipped  # unchanged in the table of contents: checked all the same
    survey = next(ln for ln in out.splitlines() if ln.strip().startswith("indescat"))
    assert "sme_needs" in survey and "2026" in survey and "40" in survey and "ok (0 d)" in survey
    assert (
        "unknown_column" in out and "surveys:indescat/sme_needs/[email]:fedcba9876543210" in out
    )  # the quarantine: codes, the scrubbed batch
    assert "current marts built: 2026-06-15 08:58 UTC" in out and "marts.mart_sme_needs" in out
    assert "Problems: none" in out


def test_json_carries_the_same_facts(fresh_db, tmp_path):
    catalogue = small_catalogue(tmp_path)
    seed_run(fresh_db, "scheduled__2026-06-14T01:30:00+00:00", at=NOW - timedelta(hours=3))
    proc = run_status("--json", "--now", NOW.isoformat(), catalogue=catalogue)
    assert proc.returncode == status.EXIT_OK, proc.stderr
    assert_private(proc)
    doc = json.loads(proc.stdout)
    assert doc["exit_status"] == 0 and doc["health"] == "healthy" and doc["problems"] == []
    assert doc["warehouse"].startswith("postgresql://") and doc["storage"]
    (run,) = doc["runs"]
    assert run["run_id"] == "scheduled__2026-06-14T01:30:00+00:00"
    assert (run["logical_date"], run["mode"], run["outcome"]) == ("2026-06-14", "nightly", "success")
    assert run["duration_seconds"] == 720 and run["duration_from"] == "first audit record"
    assert run["finished_at"] == "2026-06-15T09:00:00+00:00"
    by_code = {d["dataset"]: d for d in doc["eurostat"]}
    assert set(by_code) == set(DATASETS)
    fetched = by_code[DATASETS[0]]
    assert fetched["last_receipt"]["logical_date"] == "2026-06-14"
    assert fetched["last_batch"] == {"status": "loaded", "rows_loaded": 120, "at": "2026-06-15T08:53:00+00:00"}
    assert fetched["toc_last_update"] == "2026-04-01"
    assert fetched["source_updated_at"] == "2026-03-30T09:00:00+00:00"
    assert fetched["freshness"] == "ok" and fetched["age_hours"] == 3.2
    (survey,) = doc["surveys"]
    assert (survey["cluster"], survey["instrument"], survey["files"], survey["quarantined"]) == (
        "indescat",
        "sme_needs",
        2,
        1,
    )
    assert survey["last_load"]["wave"] == 2026 and survey["last_load"]["rows_loaded"] == 40
    (q,) = doc["quarantines"]
    assert q["codes"] == ["unknown_column"] and "[email]" in q["object"] and "reason" not in q
    assert doc["marts"]["built_at"] == "2026-06-15T08:58:00+00:00"
    assert doc["marts"]["marts"] == [{"name": "mart_sme_needs", "present": True, "rows": 40}]
    assert doc["freshness"]["eurostat"] == {"warn_after_hours": 30.0, "error_after_hours": 54.0}


def test_a_failed_last_run_exits_1(fresh_db, tmp_path):
    catalogue = small_catalogue(tmp_path)
    seed_run(fresh_db, "scheduled__2026-06-13T01:30:00+00:00", at=NOW - timedelta(days=1, hours=3))
    seed_run(
        fresh_db,
        "scheduled__2026-06-14T01:30:00+00:00",
        at=NOW - timedelta(hours=3),
        outcome="failed",
        failed_tasks=["surveys.load"],
    )
    proc = run_status("--now", NOW.isoformat(), catalogue=catalogue)
    assert proc.returncode == status.EXIT_FAILED, proc.stdout + proc.stderr
    assert_private(proc)
    assert "LAST RUN FAILED scheduled__2026-06-14T01:30:00+00:00 (2026-06-14): failed tasks surveys.load" in proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if "scheduled__2026-06-1" in ln and "nightly" in ln]
    assert len(lines) == 2 and "failed" in lines[0] and "success" in lines[1]  # newest first


def test_stale_eurostat_exits_4_naming_the_dataset(fresh_db, tmp_path):
    catalogue = small_catalogue(tmp_path, {"warn_after_hours": 24, "error_after_hours": 48})
    seed_run(fresh_db, "scheduled__2026-06-14T01:30:00+00:00", at=NOW - timedelta(hours=3))
    later = (NOW + timedelta(days=3)).isoformat()
    proc = run_status("--now", later, catalogue=catalogue)
    assert proc.returncode == status.EXIT_STALE, proc.stdout + proc.stderr
    assert_private(proc)
    problems = proc.stdout.split("\nProblems\n", 1)[1].splitlines()
    assert f"  STALE eurostat {DATASETS[0]}: last successful check 75 h ago (over 48 h)" in problems
    assert f"  STALE eurostat {DATASETS[1]}: last successful check 75 h ago (over 48 h)" in problems
    assert not any("surveys" in p for p in problems)  # a yearly survey is not stale after three days
    warn = run_status("--json", "--now", (NOW + timedelta(hours=25)).isoformat(), catalogue=catalogue)
    doc = json.loads(warn.stdout)
    assert warn.returncode == 0 and doc["health"] == "healthy"  # a warning is reported, never an exit status
    assert {d["freshness"] for d in doc["eurostat"]} == {"warn"} and len(doc["problems"]) == 2


def test_an_old_survey_wave_is_stale(fresh_db, tmp_path):
    catalogue = small_catalogue(tmp_path, {"warn_after_hours": 24 * 500, "error_after_hours": 24 * 600})
    seed_run(fresh_db, "scheduled__2026-06-14T01:30:00+00:00", at=NOW - timedelta(hours=3))
    doc = status.collect(now=NOW + timedelta(days=420), catalogue=load_catalogue(catalogue))
    assert doc["exit_status"] == status.EXIT_STALE
    assert doc["problems"] == [
        "STALE surveys indescat/sme_needs: latest loaded file received 420 days ago (over 400 days)"
    ]


def test_an_unreachable_warehouse_is_one_line_and_exit_2():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/nowhere?connect_timeout=3"
    proc = run_status(url=url)
    assert proc.returncode == status.EXIT_UNREACHABLE
    assert proc.stdout == "" and "Traceback" not in proc.stderr and "s3cret" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"error: cannot connect to the warehouse at 127.0.0.1:{port}")
    as_json = run_status("--json", url=url)
    assert as_json.returncode == status.EXIT_UNREACHABLE and "s3cret" not in as_json.stdout + as_json.stderr
    assert len(as_json.stdout.strip().splitlines()) == 1
    assert json.loads(as_json.stdout)["exit_status"] == status.EXIT_UNREACHABLE


def test_an_unmigrated_warehouse_is_one_line_and_exit_2(fresh_db):
    execute(fresh_db, "drop table audit.run_summaries cascade")
    proc = run_status()
    assert proc.returncode == status.EXIT_UNREACHABLE and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "is not migrated (no audit tables): run `ss4gl warehouse migrate`" in proc.stderr


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01"])
def test_now_must_be_an_iso_timestamp(bad):
    proc = run_status("--now", bad)
    assert proc.returncode == 2 and "not an ISO timestamp" in proc.stderr and "Traceback" not in proc.stderr
