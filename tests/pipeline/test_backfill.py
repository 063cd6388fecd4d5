"""Backfills rebuild logical dates from the raw archive (no download), and twice gives identical marts."""

from __future__ import annotations

import os
import re

import pytest
from psycopg2 import sql

from tests.conftest import create_database, drop_database, query
from tests.pipeline.test_nightly import mart_checksums, ss4gl

pytestmark = pytest.mark.timeout(3600)  # the module runs the DAG 6 times (two test processes share 2 cores)

NIGHTLY = "2026-11-23"
FROM, TO = "2026-11-24", "2026-11-25"  # a range: two dates, each replayed twice


@pytest.fixture(scope="module")
def backfills(warehouse_url, tmp_path_factory):
    url = create_database(warehouse_url)
    env = {**os.environ, "WAREHOUSE_URL": url, "SS4GL_HOME": str(tmp_path_factory.mktemp("state")), "OFFLINE": "1"}
    nightly = ss4gl(["run", "--date", NIGHTLY], env)
    nightly_sums = mart_checksums(url)
    first = ss4gl(["backfill", "--from", FROM, "--to", TO], env)
    first_sums = mart_checksums(url)
    second = ss4gl(["backfill", "--from", FROM, "--to", TO], env)
    yield {
        "url": url,
        "nightly": nightly,
        "first": first,
        "second": second,
        "nightly_sums": nightly_sums,
        "first_sums": first_sums,
        "second_sums": mart_checksums(url),
    }
    drop_database(warehouse_url, url)


def test_backfills_succeed(backfills):
    for key in ("nightly", "first", "second"):
        res = backfills[key]
        assert res.returncode == 0, f"{key}: " + res.stdout[-2000:] + res.stderr[-2000:]
    # one run summary per date (the progress lines name the dates too: "ss4gl_nightly D: running ...")
    assert len(re.findall(r"^ss4gl_nightly 2026-11-2\d  \(run ", backfills["first"].stdout, re.MULTILINE)) == 2


def test_two_backfills_give_identical_marts(backfills):
    assert backfills["first_sums"] == backfills["second_sums"]
    # Nothing new was known on those dates: the marts equal the nightly's.
    assert backfills["first_sums"] == backfills["nightly_sums"]


def test_backfill_replays_from_archive_without_download(backfills):
    url = backfills["url"]
    runs = query(url, "select run_id, logical_date from audit.run_summaries where logical_date > %s", NIGHTLY)
    assert len(runs) == 4  # 2 dates x 2 backfills
    for run_id, _ in runs:
        assert query(url, "select count(*) from audit.fetches where run_id = %s", run_id)[0][0] == 0
        decisions = {r[0] for r in query(url, "select decision from audit.dataset_checks where run_id = %s", run_id)}
        assert decisions == {"replay"}
        # Replayed content is already in raw: nothing is rewritten.
        summary = query(url, "select summary from audit.run_summaries where run_id = %s", run_id)[0][0]
        assert summary["sources"]["eurostat"]["rows_loaded"] == 0
        assert summary["marts_schema"] == "history" and summary["marts"]["mart_cluster_kpis"] > 0


def test_a_backfill_builds_its_date_into_history_once(backfills):
    """The first backfill builds each date's marts into history (the current marts untouched: see above); the
    second finds them current and skips dbt."""
    url = backfills["url"]
    built = query(
        url,
        "select logical_date::text, summary->'dbt_nodes' ? 'success' from audit.run_summaries"
        " where logical_date > %s order by finished_at",
        NIGHTLY,
    )
    assert built == [(d, True) for d in ("2026-11-24", "2026-11-25")] + [
        (d, False) for d in ("2026-11-24", "2026-11-25")
    ]


def test_history_as_of_each_date_equals_what_was_known_then(backfills):
    """Nothing new was received after the nightly: every mart as of each backfilled date equals the current one."""
    url = backfills["url"]
    marts = [
        r[0]
        for r in query(
            url, "select table_name from information_schema.tables where table_schema = 'history' order by 1"
        )
    ]
    assert "mart_cluster_kpis" in marts and "mart_eurostat_revisions" not in marts
    current = "select md5(string_agg(r, '|' order by r)) from (select to_jsonb(t)::text as r from marts.{} t) x"
    as_of = (
        "select md5(string_agg(r, '|' order by r)) from (select (to_jsonb(h) - 'logical_date')::text as r"
        " from history.{} h where logical_date = %s) x"
    )
    for mart in marts:
        (want,) = query(url, sql.SQL(current).format(sql.Identifier(mart)))[0]
        for date in ("2026-11-24", "2026-11-25"):
            assert query(url, sql.SQL(as_of).format(sql.Identifier(mart)), date)[0] == (want,), (mart, date)


def test_backfill_before_anything_was_received_loads_nothing(backfills, tmp_path):
    env = {**os.environ, "WAREHOUSE_URL": backfills["url"], "SS4GL_HOME": str(tmp_path), "OFFLINE": "1"}
    res = ss4gl(["backfill", "--from", "2026-01-01", "--to", "2026-01-01"], env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "batches: loaded" not in res.stdout
    # The marts as of that date are empty (nothing was known), not the current marts' counts; the summary says so in
    # one line instead of row counts
    assert "no receipts on or before 2026-01-01: nothing to rebuild; the marts as of that date are empty" in res.stdout
    assert "mart history.mart_cluster_kpis as of 2026-01-01" not in res.stdout
    assert query(
        backfills["url"], "select count(*) from history.mart_cluster_kpis where logical_date = '2026-01-01'"
    ) == [(0,)]
