"""Freshness checked every nightly run (#18.4): the publish stage grades every Eurostat dataset (our last successful
check, and Eurostat's update stamp against the loaded version's) and every cluster's survey instruments (yearly
cadence), records the findings in ``audit.freshness_checks``, puts them in the run summary and alerts once per
stale object; ``ss4gl status`` reports the same. A backfill replays the past: no freshness.

Audit rows written into a fresh migrated warehouse, timed relative to now (as a real run sees them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from ingest import status
from ingest.config import CATALOGUE_PATH
from ingest.tasks import publish as pub
from ingest.tasks.common import RunContext
from tests.conftest import query
from tests.test_status import execute, seed_run

BEHIND = "nama_10r_2gdp"  # Eurostat published a version the warehouse does not hold (its batch was quarantined)


@pytest.fixture
def stale_world(fresh_db, tmp_path, monkeypatch):
    """indescat only, two datasets, both instruments; a nightly 2 h ago checked both datasets and loaded the
    indescat SME-needs file; a later check saw a newer version of one dataset (5 days old) and quarantined it; no
    state-of-affairs file was ever loaded."""
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    raw["clusters"] = [c for c in raw["clusters"] if c["id"] == "indescat"]
    raw["eurostat_datasets"] = [d for d in raw["eurostat_datasets"] if d["code"] in ("nama_10r_2gdp", "sprt_emp_sex")]
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("SS4GL_CATALOGUE", str(path))
    now = datetime.now(UTC)
    seed_run(fresh_db, "scheduled__earlier", at=now - timedelta(hours=2))
    newer = (now - timedelta(days=5)).date()
    execute(
        fresh_db,
        "insert into audit.dataset_checks (run_id, logical_date, source, object, decision, reason, toc_last_update,"
        " checked_at) values ('scheduled__later', %s, 'eurostat', %s, 'fetch', 'updated', %s, %s)",
        newer,
        BEHIND,
        newer,
        now - timedelta(hours=1),
    )
    return {"url": fresh_db, "newer": newer}


def findings_by_object(url: str, run_id: str) -> dict[str, tuple]:
    rows = query(
        url, "select source, object, grade, unit, message from audit.freshness_checks where run_id = %s", run_id
    )
    return {f"{source} {obj}": (grade, unit, message) for source, obj, grade, unit, message in rows}


def test_a_nightly_records_freshness_summarises_it_and_alerts_once_per_stale_object(stale_world):
    url, newer = stale_world["url"], stale_world["newer"]
    ctx = RunContext(run_id="scheduled__now", logical_date=datetime.now(UTC).date().isoformat())
    alerts: list[str] = []
    try:
        pub.publish(ctx, [], alert=alerts.append)
    except pub.RunHadProblems:
        pass  # no marts in this warehouse: the run fails, after its summary and alerts

    behind_message = f"Eurostat updated it on {newer}; the warehouse holds the version of 2026-04-01"
    assert findings_by_object(url, ctx.run_id) == {
        f"eurostat {BEHIND}": ("stale", "h", behind_message),
        "eurostat sprt_emp_sex": ("ok", "h", ""),
        "surveys indescat/sme_needs": ("ok", "d", ""),
        "surveys indescat/state_of_affairs": ("stale", "d", "no file loaded yet"),
    }
    assert alerts == [
        f"ALERT ss4gl_nightly STALE eurostat {BEHIND}: {behind_message}",
        "ALERT ss4gl_nightly STALE surveys indescat/state_of_affairs: no file loaded yet",
    ]
    [(summary,)] = query(url, "select summary from audit.run_summaries where run_id = %s", ctx.run_id)
    assert summary["freshness"]["checked"] == 4 and summary["freshness"]["ok"] == 2
    text = pub.format_summary(summary).splitlines()
    assert "  freshness: 2 of 4 datasets and survey instruments ok, 0 warn, 2 stale (`ss4gl status`)" in text
    assert f"  STALE eurostat {BEHIND}: {behind_message}" in text

    doc = status.collect()  # the same rules in `ss4gl status`
    assert f"STALE eurostat {BEHIND}: {behind_message}" in doc["problems"]
    assert doc["exit_status"] == status.EXIT_FAILED  # this run failed (no marts here): that wins over staleness


def test_a_check_too_long_ago_warns_then_goes_stale_and_a_recent_update_only_warns(stale_world):
    url = stale_world["url"]
    now = datetime.now(UTC)
    cfg = {"warn_after_hours": 30.0, "error_after_hours": 54.0}
    eurostat = [
        {"dataset": "a", "freshness": "warn", "age_hours": 40.0},
        {
            "dataset": "b",
            "freshness": "ok",
            "age_hours": 1.0,
            "latest_toc_last_update": now.date().isoformat(),
            "loaded_toc_last_update": "2026-01-01",
        },
        {"dataset": "c", "freshness": "never", "age_hours": None},
        {
            "dataset": "d",
            "freshness": "ok",
            "age_hours": 1.0,
            "latest_toc_last_update": "2026-01-01",
            "loaded_toc_last_update": "2026-01-01",
        },
    ]
    found = {f["object"]: (f["grade"], f["message"]) for f in status.freshness.findings(eurostat, [], now, cfg)}
    assert found == {
        "a": ("warn", "last successful check 40 h ago (over 30 h)"),
        "b": ("warn", f"Eurostat updated it on {now.date()}; the warehouse holds the version of 2026-01-01"),
        "c": ("stale", "never checked successfully"),
        "d": ("ok", ""),
    }
    # a backfill replays the past: no freshness findings, no freshness in its summary
    ctx = RunContext(run_id="backfill__2026-03-01", logical_date="2026-03-01", mode="backfill")
    alerts: list[str] = []
    try:
        pub.publish(ctx, [], alert=alerts.append)
    except pub.RunHadProblems:
        pass
    assert alerts == [] and findings_by_object(url, ctx.run_id) == {}
    [(summary,)] = query(url, "select summary from audit.run_summaries where run_id = %s", ctx.run_id)
    assert "freshness" not in summary


def test_a_freshness_failure_never_costs_the_run_summary(stale_world):
    url = stale_world["url"]
    execute(url, "drop table audit.freshness_checks")
    ctx = RunContext(run_id="scheduled__broken", logical_date=datetime.now(UTC).date().isoformat())
    alerts: list[str] = []
    try:
        pub.publish(ctx, [], alert=alerts.append)
    except pub.RunHadProblems:
        pass
    [(summary,)] = query(url, "select summary from audit.run_summaries where run_id = %s", ctx.run_id)
    assert (
        "freshness" not in summary and 'relation "audit.freshness_checks" does not exist' in summary["freshness_error"]
    )
    assert alerts == []
    assert any(ln.startswith("  freshness: not checked (") for ln in pub.format_summary(summary).splitlines())
