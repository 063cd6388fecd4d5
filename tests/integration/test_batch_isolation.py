"""Every batch is its own unit at every stage (real archive, real GX, real Postgres): a parser that crashes on one
file, and rows the warehouse refuses at load (the safety net behind the contract), quarantine that file alone with
its row and column, never the refused value; every other file loads and the tasks themselves succeed."""

from __future__ import annotations

import pytest

from ingest.tasks import gate, surveys
from ingest.tasks.common import RunContext
from tests.integration._support import (
    SAMPLE_INBOX,
    batch_of,
    drop,
    isolated_stage,
    quarantine_rows,
    query,
    reason_beside,
)

FILES = {
    "range": "epsi/state_of_affairs/state_of_affairs_2025.csv",
    "nul": "epsi/state_of_affairs/state_of_affairs_2024.csv",
    "crash": "cluster_montagne/sme_needs/results-survey482915.csv",
    "good": "epsi/sme_needs/results-survey771203.csv",
}
SECRET = "Jansen\x00private"


def tampered(batch):
    """The real parser, then a value the contract would have refused: what the load safety net must catch."""
    if batch.object == FILES["crash"]:
        raise RecursionError("maximum recursion depth exceeded while parsing 'Müller'")
    prep = surveys.prepare(batch)
    if batch.object == FILES["range"]:
        prep.tables["survey_soa_profile"]["member_employees"] = 3_000_000_000
        prep.checks = []  # GX would not see it either
    if batch.object == FILES["nul"]:
        prep.tables["survey_soa_profile"]["note"] = SECRET
        prep.checks = []
    return prep


@pytest.fixture(scope="module")
def isolated(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isolation")
    inbox = tmp / "inbox"
    for rel in FILES.values():
        drop(inbox, rel, (SAMPLE_INBOX / rel).read_bytes())
    with isolated_stage(warehouse_url, tmp) as st:
        ctx = RunContext("it-isolation", "2026-11-26")
        surveys.extract(ctx, inbox=str(inbox))
        validated = gate.validate(ctx, surveys.SOURCE, tampered, on_quarantine=surveys.write_reason)
        loaded = gate.load(ctx, surveys.SOURCE, on_quarantine=surveys.write_reason)
        yield {"url": st.url, "inbox": inbox, "validated": validated, "loaded": loaded}


def test_a_parser_crash_quarantines_that_file_only(isolated):
    b = batch_of(isolated["url"], "surveys", FILES["crash"])
    assert b["status"] == "quarantined"
    [p] = quarantine_rows(isolated["url"], b["batch_id"])
    assert p["code"] == "parse_failed" and "RecursionError" in p["message"] and "Müller" not in p["message"]
    assert isolated["validated"]["quarantined"] == 1 and isolated["validated"]["validated"] == 3
    assert reason_beside(isolated["inbox"] / FILES["crash"])["problems"][0]["code"] == "parse_failed"


def test_out_of_range_value_refused_at_load_is_located_not_echoed(isolated):
    url = isolated["url"]
    b = batch_of(url, "surveys", FILES["range"])
    assert b["status"] == "quarantined" and b["rows_loaded"] is None
    [p] = quarantine_rows(url, b["batch_id"])
    assert p["code"] == "load_refused" and p["found"] == "numeric_value_out_of_range"
    assert (p["row"], p["column"]) == (1, "member_employees")
    assert "raw.survey_soa_profile" in p["message"] and "3000000000" not in p["message"]
    assert "3000000000" not in (b["reason"] or "")
    side = reason_beside(isolated["inbox"] / FILES["range"])
    assert side["problems"][0]["code"] == "load_refused"


def test_nul_byte_refused_at_load_without_echo(isolated):
    url = isolated["url"]
    b = batch_of(url, "surveys", FILES["nul"])
    assert b["status"] == "quarantined"
    [p] = quarantine_rows(url, b["batch_id"])
    assert p["code"] == "load_refused" and p["row"] == 1
    assert "Jansen" not in p["message"] and "private" not in p["message"]


def test_nothing_of_a_refused_batch_is_in_raw_and_the_good_file_loads(isolated):
    url = isolated["url"]
    for key in ("range", "nul", "crash"):
        b = batch_of(url, "surveys", FILES[key])
        for (t,) in query(
            url,
            "select table_name from information_schema.tables where table_schema = 'raw'"
            " and table_name like 'survey%%'",
        ):
            assert query(url, f"select count(*) from raw.{t} where batch_id = %s", b["batch_id"]) == [(0,)]  # noqa: S608
    good = batch_of(url, "surveys", FILES["good"])
    assert good["status"] == "loaded" and good["rows_loaded"] > 0
    assert isolated["loaded"] == {"batches": 3, "rows": good["rows_loaded"], "quarantined": 2}


def test_a_file_that_vanishes_after_listing_does_not_stop_the_others(warehouse_url, tmp_path, monkeypatch):
    import ingest.surveys.inbox as inbox_mod

    inbox = tmp_path / "inbox"
    for rel in (FILES["good"], FILES["range"]):
        drop(inbox, rel, (SAMPLE_INBOX / rel).read_bytes())
    real_read = inbox_mod.read

    def read(item, max_bytes=None):  # the upload is moved away between the listing and the read
        if str(item.path).endswith("state_of_affairs_2025.csv"):
            raise FileNotFoundError(item.path)
        return real_read(item, max_bytes)

    monkeypatch.setattr(inbox_mod, "read", read)
    with isolated_stage(warehouse_url, tmp_path) as st:
        got = surveys.extract(RunContext("it-vanished", "2026-11-26"), inbox=str(inbox))
        assert got == {"new": 1, "already_processed": 0, "unreadable": 1}
        assert [r[0] for r in query(st.url, "select object from audit.batches")] == [FILES["good"]]
