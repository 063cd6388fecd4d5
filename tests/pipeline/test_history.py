"""Corrections, backfills and repairs never lose a number (`ss4gl run` / `ss4gl backfill`: real Airflow dag.test,
real Postgres, GX and dbt; the bundled Eurostat samples over loopback HTTP; a survey inbox of its own).

1. 2026-11-20: EPSI's state of affairs 2025 loads (member employees 2088).
2. 2026-11-21: EPSI sends a corrected file (2100): mart_cluster_kpis shows 2100; raw keeps both files (lineage).
3. A backfill of 2026-11-20 reproduces that date in history.mart_cluster_kpis (logical_date 2026-11-20: 2088) and
   leaves the current marts current (2100).
4. 2026-11-22: the nightly finds nothing to repair: the current marts are still 2100.
5. A backfill of 2026-11-21 picks the later arrival of the two files, not the file name (history: 2100).
6. A dropped mart is missing from the summary's marts and rebuilt by the next run; `--rebuild` forces a build.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest

from ingest.tasks.common import RunContext
from tests.conftest import create_database, drop_database, query
from tests.integration._support import SAMPLE_INBOX, copy_sample_inbox, drop
from tests.pipeline.test_nightly import ss4gl

pytestmark = pytest.mark.timeout(2400)
SOA = "epsi/state_of_affairs/state_of_affairs_2025.csv"
FIX = "epsi/state_of_affairs/state_of_affairs_2025-fix.csv"  # sorts before SOA: arrival must win, not the name
COMPILED_STAGING = "models/staging/surveys/stg_surveys__soa_profile.sql"  # as dbt docs compiled it in a run


def _employees(url: str) -> tuple[list, list]:
    raw = query(
        url,
        "select member_employees from raw.survey_soa_profile where cluster = 'epsi' and wave = 2025"
        " order by member_employees",
    )
    mart = query(url, "select member_employees from marts.mart_cluster_kpis where cluster_id = 'epsi' and year = 2025")
    return [r[0] for r in raw], [r[0] for r in mart]


def _history(url: str, as_of: str) -> list:
    return [
        r[0]
        for r in query(
            url,
            "select member_employees from history.mart_cluster_kpis where logical_date = %s"
            " and cluster_id = 'epsi' and year = 2025",
            as_of,
        )
    ]


@pytest.fixture(scope="module")
def history(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("history")
    inbox = tmp / "inbox"
    copy_sample_inbox(inbox)
    url = create_database(warehouse_url)
    env = {
        **os.environ,
        "WAREHOUSE_URL": url,
        "SS4GL_HOME": str(tmp / "state"),
        "SURVEY_INBOX": str(inbox),
        "OFFLINE": "1",
    }
    out: dict = {"url": url, "env": env}
    out["night1"] = ss4gl(["run", "--date", "2026-11-20"], env)
    out["after1"] = _employees(url)
    corrected = (SAMPLE_INBOX / SOA).read_bytes().replace(b"member employees,2088", b"member employees,2100")
    drop(inbox, FIX, corrected)
    out["night2"] = ss4gl(["run", "--date", "2026-11-21"], env)
    out["after2"] = _employees(url)
    out["compiled2"] = (tmp / "state" / "dbt" / "target" / "compiled" / "ss4gl" / COMPILED_STAGING).read_text()
    out["log2"] = (tmp / "state" / "logs" / "run-2026-11-21.log").read_text(encoding="utf-8")  # a backfill rewrites it
    out["backfill"] = ss4gl(["backfill", "--from", "2026-11-20", "--to", "2026-11-20"], env)
    out["after_backfill"] = _employees(url)
    out["history_backfill"] = _history(url, "2026-11-20")
    out["night3"] = ss4gl(["run", "--date", "2026-11-22"], env)
    out["after3"] = _employees(url)
    out["backfill2"] = ss4gl(["backfill", "--from", "2026-11-21", "--to", "2026-11-21"], env)
    out["after_backfill2"] = _employees(url)
    out["history_backfill2"] = _history(url, "2026-11-21")
    yield out
    drop_database(warehouse_url, url)


def test_correction_loads(history):
    for key in ("night1", "night2"):
        assert history[key].returncode == 0, history[key].stdout[-2000:] + history[key].stderr[-2000:]
    assert history["after1"] == ([2088], [2088])
    assert history["after2"] == ([2088, 2100], [2100])  # the superseded file stays in raw


def test_a_later_night_reuses_dbt_partial_parse_and_selects_files_as_of_its_date(history):
    """A nightly gives dbt its logical date as an environment variable, not a var: the vars stay the same from
    night to night, so the second night's `dbt build` and `dbt docs` re-use the parse of the first one."""
    log = history["log2"]
    cache = Path(history["env"]["SS4GL_HOME"]) / "airflow" / "cosmos" / "ss4gl_nightly__dbt" / "target"
    assert f"latest partial parse file is {cache / 'partial_parse.msgpack'}" in log
    assert "Unable to do partial parsing" not in log and "Starting full parse" not in log
    # ... and the survey files current on that date are still those received on or before it
    assert "logical_date <= cast('2026-11-21' as date)" in history["compiled2"]


def test_the_superseded_file_keeps_its_lineage(history):
    rows = query(
        history["url"],
        "select p.member_employees, b.object, b.status from raw.survey_soa_profile p"
        " join audit.batches b using (batch_id) where p.cluster = 'epsi' and p.wave = 2025"
        " order by 1",
    )
    assert rows == [(2088, SOA, "loaded"), (2100, FIX, "loaded")]


def test_backfill_reproduces_its_date_in_history_and_leaves_the_current_marts_current(history):
    assert history["backfill"].returncode == 0, history["backfill"].stderr[-2000:]
    assert history["history_backfill"] == [2088]
    assert history["after_backfill"] == ([2088, 2100], [2100])
    assert "mart history.mart_cluster_kpis as of 2026-11-20" in history["backfill"].stdout


def test_next_nightly_keeps_the_correction(history):
    res = history["night3"]
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert history["after3"] == ([2088, 2100], [2100])
    assert "dbt nodes: success" not in res.stdout  # nothing to repair: the backfill left the current state alone


def test_the_later_arrival_wins_in_a_backfill_not_the_file_name(history):
    assert history["backfill2"].returncode == 0, history["backfill2"].stderr[-2000:]
    assert history["history_backfill2"] == [2100]
    assert history["after_backfill2"] == ([2088, 2100], [2100])


def test_a_dropped_mart_is_flagged_and_rebuilt_by_the_next_run(history):
    from ingest.tasks.publish import collect

    url, env = history["url"], history["env"]
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("drop table marts.mart_sme_needs cascade")
    with conn, conn.cursor() as cur:
        os.environ["WAREHOUSE_URL"], saved = url, os.environ["WAREHOUSE_URL"]
        try:
            summary = collect(cur, RunContext("probe", "2026-11-23"))
        finally:
            os.environ["WAREHOUSE_URL"] = saved
    conn.close()
    assert summary["missing_marts"] == ["mart_sme_needs"]
    res = ss4gl(["run", "--date", "2026-11-23"], env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "MISSING" not in res.stdout
    assert query(url, "select count(*) > 0 from marts.mart_sme_needs") == [(True,)]
    # nothing changed since: the next run skips dbt, unless a rebuild is asked for
    quiet = ss4gl(["run", "--date", "2026-11-24"], env)
    forced = ss4gl(["run", "--date", "2026-11-25", "--rebuild"], env)
    assert quiet.returncode == 0 and forced.returncode == 0, forced.stderr[-2000:]
    home = env["SS4GL_HOME"]
    assert "dbt build skipped" in open(f"{home}/logs/run-2026-11-24.log", encoding="utf-8").read()
    assert "rebuild requested" in open(f"{home}/logs/run-2026-11-25.log", encoding="utf-8").read()
