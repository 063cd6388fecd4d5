"""The run summary (``ingest.tasks.publish``): what ``ss4gl run`` / ``ss4gl backfill`` print at the end."""

from __future__ import annotations

import copy

from ingest.tasks.common import RunContext
from ingest.tasks.publish import collect, format_summary
from ingest.warehouse import LOADER, connect
from tests.conftest import query

EARLY = "2020-01-01"
NOTHING = f"  no receipts on or before {EARLY}: nothing to rebuild; the marts as of that date are empty"
# A backfill's summary as publish writes it (collect + task_report + outcome), for a date before anything was received.
BACKFILL = {
    "run_id": f"backfill__{EARLY}T00:30:00+00:00",
    "logical_date": EARLY,
    "sources": {
        "eurostat": {"decisions": {}},
        "surveys": {},
    },
    "quarantined": [],
    "validation": {},
    "marts": {"mart_cluster_kpis": 0, "mart_matchmaking": 0, "mart_partnership_indicators": 0, "mart_sme_needs": 0},
    "marts_schema": "history",
    "missing_marts": [],
    "receipts_as_of": 0,
    "warehouse": "postgresql://postgres:***@127.0.0.1:5432/ss4gl",
    "docs": {},
    "failed_tasks": [],
    "dbt_nodes": {"success": 40},
    "task_seconds": {},
    "outcome": "success",
}


def summary(**changes) -> dict:
    out = copy.deepcopy(BACKFILL)
    out.update(changes)
    return out


def test_a_backfill_before_anything_was_received_says_so_in_one_line():
    text = format_summary(summary())
    assert NOTHING in text.splitlines()
    assert "mart history." not in text  # no row counts that look like that date's


def test_rows_built_from_reference_data_alone_are_not_passed_off_as_received_data():
    text = format_summary(summary(marts={**BACKFILL["marts"], "mart_partnership_indicators": 35}))
    line = next(ln for ln in text.splitlines() if "no receipts on or before" in ln)
    assert line == (
        f"  no receipts on or before {EARLY}: nothing to rebuild; the marts as of that date are empty of received"
        " data: rows only from the project's reference data (mart_partnership_indicators 35)"
    )


def test_a_backfill_with_receipts_and_older_summaries_print_row_counts():
    counts = {"mart_cluster_kpis": 10, "mart_sme_needs": 0}
    for s in (
        summary(receipts_as_of=12, marts=counts),
        summary(marts=counts, sources={"surveys": {"batches": {"loaded": 2}}}),  # replayed something
        {k: v for k, v in summary(marts=counts).items() if k != "receipts_as_of"},  # written before it was recorded
    ):
        text = format_summary(s)
        assert "no receipts" not in text
        assert f"  mart history.mart_cluster_kpis as of {EARLY}: 10 rows" in text.splitlines()
        assert f"  mart history.mart_sme_needs as of {EARLY}: 0 rows" in text.splitlines()
    nightly = format_summary(summary(marts_schema="marts", marts=counts))
    assert "  mart marts.mart_cluster_kpis: 10 rows" in nightly.splitlines()


def test_collect_counts_the_receipts_a_backfill_date_can_replay(fresh_db):
    query(
        fresh_db,
        "insert into audit.batch_receipts (batch_id, source, object, sha256, run_id, logical_date)"
        " values ('surveys:epsi/sme_needs/a.xlsx:1', 'surveys', 'epsi/sme_needs/a.xlsx', '{aa}', 'r1', '2026-11-23')"
        " returning 1",
    )
    got = {}
    conn = connect(fresh_db, role=LOADER)
    with conn, conn.cursor() as cur:
        for date, mode in ((EARLY, "backfill"), ("2026-11-23", "backfill"), ("2026-11-24", "nightly")):
            got[date] = collect(cur, RunContext(run_id=f"{mode}__{date}", logical_date=date, mode=mode))
    conn.close()
    assert got[EARLY]["receipts_as_of"] == 0 and got["2026-11-23"]["receipts_as_of"] == 1
    assert "receipts_as_of" not in got["2026-11-24"]  # a nightly run receives, it replays nothing
    lines = format_summary({**got[EARLY], "outcome": "success"}).splitlines()
    assert NOTHING in lines
    assert not [ln for ln in lines if ln.startswith("  mart ") and ln.endswith(" rows")]  # (no history tables here:
    # every mart is listed as MISSING, as it is before a first backfill builds them)
