"""Batch bookkeeping is per run (#15.6): two runs handling the same content at the same time (a nightly beside a
backfill, two backfill dates) each keep their own batches in ``audit.run_batches``; ``audit.batches`` keeps the
content's latest outcome. Fast, no scheduler: the stages are called directly, interleaved as two overlapping
runs interleave them (tests/ops/test_overlap.py does the same under a real scheduler)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.tasks import from_archive, gate, publish, surveys
from ingest.tasks.common import Batch, RunContext, record_batch, record_quarantine, run_batches
from ingest.warehouse import LOADER, connect
from tests.conftest import query
from tests.integration._support import SAMPLE_INBOX, SURVEY_TABLES, drop

NIGHTLY = RunContext("scheduled__2026-11-26T00:30:00+00:00", "2026-11-26")
BACKFILL = RunContext("backfill__2026-11-26T00:30:00+00:00", "2026-11-26", mode="backfill")
PARTITION = {"dataset": "zz_overlap"}


@pytest.fixture
def state(fresh_db, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SS4GL_HOME", str(tmp_path / "state"))
    return tmp_path


def _batch(status: str = "received", **kw) -> Batch:
    return Batch(
        source="eurostat",
        object="zz_overlap",
        sha256=["a" * 64],
        status=status,
        meta={"toc_last_update": "2026-11-20", **kw.pop("meta", {})},
        **kw,
    )


def _ids(batches: list[Batch]) -> list[str]:
    return [b.batch_id for b in batches]


def test_two_runs_recording_the_same_batch_keep_their_own_bookkeeping(fresh_db, state):
    bid = _batch().batch_id
    validated = {"partition": PARTITION, "tables": ["eurostat_observations"]}
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        # The nightly receives, validates and loads the batch ...
        record_batch(cur, NIGHTLY, _batch())
        record_batch(cur, NIGHTLY, _batch("validated", rows=10, meta=validated))
        # ... while the backfill registers the same content (a replay): the nightly keeps its batch.
        record_batch(cur, BACKFILL, _batch())
        assert _ids(run_batches(cur, NIGHTLY, "eurostat", "validated")) == [bid]
        assert _ids(run_batches(cur, BACKFILL, "eurostat", "received")) == [bid]
        assert run_batches(cur, NIGHTLY, "eurostat", "received") == []
        assert run_batches(cur, NIGHTLY, "eurostat", "validated")[0].meta["partition"] == PARTITION
        record_batch(cur, NIGHTLY, _batch("loaded", rows=10, meta=validated), rows_loaded=10)
        # The backfill validates its own copy; the content stays "loaded" for everyone else meanwhile.
        record_batch(cur, BACKFILL, _batch("validated", rows=10, meta=validated))
        assert _ids(run_batches(cur, BACKFILL, "eurostat", "validated")) == [bid]
        assert _ids(run_batches(cur, NIGHTLY, "eurostat", "loaded")) == [bid]
        cur.execute("select status, run_id, meta->'partition' from audit.batches where batch_id = %s", (bid,))
        assert cur.fetchall() == [("loaded", NIGHTLY.run_id, PARTITION)]
        record_batch(cur, BACKFILL, _batch("loaded", rows=10, meta=validated), rows_loaded=0)  # unchanged
        # A second batch only the backfill quarantines.
        bad = Batch(source="eurostat", object="zz_bad", sha256=["b" * 64], status="quarantined", reason="zz_bad: no")
        record_quarantine(cur, bad, [{"code": "body_html", "severity": "error", "message": "zz_bad: no"}])
        record_batch(cur, BACKFILL, bad)
        summaries = {ctx.run_id: publish.collect(cur, ctx)["sources"]["eurostat"] for ctx in (NIGHTLY, BACKFILL)}
    conn.close()

    runs = query(
        fresh_db, "select run_id, batch_id, status, rows_parsed, rows_loaded from audit.run_batches order by 1, 2"
    )
    assert runs == sorted(
        [
            (BACKFILL.run_id, bid, "loaded", 10, 0),
            (BACKFILL.run_id, bad.batch_id, "quarantined", None, None),
            (NIGHTLY.run_id, bid, "loaded", 10, 10),
        ]
    )
    # audit.batches: one row per content, its latest outcome (here: the backfill's).
    assert query(fresh_db, "select batch_id, status, run_id from audit.batches order by 1") == sorted(
        [(bid, "loaded", BACKFILL.run_id), (bad.batch_id, "quarantined", BACKFILL.run_id)]
    )
    # Each run's summary counts its own batches and rows.
    assert summaries[NIGHTLY.run_id] == {"batches": {"loaded": 1}, "rows_validated": 10, "rows_loaded": 10}
    assert summaries[BACKFILL.run_id] == {
        "batches": {"loaded": 1, "quarantined": 1},
        "rows_validated": 10,
        "rows_loaded": 0,
    }
    assert publish.quarantined_in_run(NIGHTLY) == []
    assert publish.quarantined_in_run(BACKFILL) == ["eurostat zz_bad: zz_bad: no"]


def test_a_replay_leaves_the_latest_outcome_in_place(fresh_db, state):
    """What other readers of audit.batches rely on while another run replays content: a loaded survey file stays
    "already processed" (the nightly extract must not take it for a new file), a quarantined one stays
    quarantined; a released one is picked up again."""
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        record_batch(cur, NIGHTLY, _batch("loaded", meta={"partition": PARTITION}), rows_loaded=3)
        record_batch(cur, BACKFILL, _batch())
        record_batch(cur, BACKFILL, _batch("validated"))
        cur.execute("select status, run_id, rows_loaded, meta ? 'partition' from audit.batches")
        assert cur.fetchall() == [("loaded", NIGHTLY.run_id, 3, True)]
        record_batch(cur, BACKFILL, _batch("quarantined", reason="suite changed"))  # an outcome replaces one
        record_batch(cur, NIGHTLY, _batch())
        cur.execute("select status, run_id from audit.batches")
        assert cur.fetchall() == [("quarantined", BACKFILL.run_id)]
        cur.execute("update audit.batches set status = 'released'")  # ss4gl quarantine release
        record_batch(cur, NIGHTLY, _batch())
        cur.execute("select status, run_id from audit.batches")
        assert cur.fetchall() == [("received", NIGHTLY.run_id)]
    conn.close()


def test_a_nightly_and_a_backfill_interleaved_on_the_same_survey_file(fresh_db, state):
    """The real stages, interleaved: the nightly extracts a file, the backfill registers the same receipt, then
    validate and load of both runs alternate. Both validate and load their batch; raw holds one copy."""
    rel = "epsi/state_of_affairs/state_of_affairs_2025.csv"
    inbox = state / "inbox"
    drop(inbox, rel, (SAMPLE_INBOX / rel).read_bytes())

    assert surveys.extract(NIGHTLY, inbox=str(inbox))["new"] == 1
    assert from_archive.register(BACKFILL, surveys.SOURCE) == {"replayed": 1}
    checked = {ctx.run_id: gate.validate(ctx, surveys.SOURCE, surveys.prepare) for ctx in (NIGHTLY, BACKFILL)}
    loaded = {ctx.run_id: gate.load(ctx, surveys.SOURCE) for ctx in (BACKFILL, NIGHTLY)}

    for run_id in (NIGHTLY.run_id, BACKFILL.run_id):
        assert checked[run_id]["validated"] == 1 and checked[run_id]["quarantined"] == 0, checked
        assert loaded[run_id]["batches"] == 1 and loaded[run_id]["quarantined"] == 0, loaded
    rows = checked[NIGHTLY.run_id]["rows"]
    assert rows > 0 and checked[BACKFILL.run_id]["rows"] == rows
    # The first load wrote the rows, the second found them in place: one copy.
    assert loaded[BACKFILL.run_id]["rows"] == rows and loaded[NIGHTLY.run_id]["rows"] == 0
    in_raw = sum(query(fresh_db, f"select count(*) from raw.{t}")[0][0] for t in SURVEY_TABLES)  # noqa: S608
    assert in_raw == rows
    assert query(fresh_db, "select run_id, status, rows_loaded from audit.run_batches order by 1") == [
        (BACKFILL.run_id, "loaded", rows),
        (NIGHTLY.run_id, "loaded", 0),
    ]
    assert query(fresh_db, "select status, run_id from audit.batches") == [("loaded", NIGHTLY.run_id)]
    assert query(fresh_db, "select count(*) from audit.batch_receipts") == [(1,)]  # the replay adds no receipt
    assert not list((state / "state" / "staging").glob("*/*")), "a run left staged files behind"
