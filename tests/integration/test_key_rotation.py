"""Rotating the pseudonymisation key: the rotation backfill replays every survey batch from the archive and reloads
it with the new key (same content, other pseudonyms); no old-key pseudonym remains in raw, and each batch records
the id of the key that made its pseudonyms (real archive, GX and Postgres)."""

from __future__ import annotations

import pytest

from ingest.surveys.privacy import key_id
from ingest.tasks import from_archive, gate, surveys
from ingest.tasks.common import RunContext
from tests.integration._support import SAMPLE_INBOX, batch_of, drop, isolated_stage, query

FILES = ("epsi/sme_needs/results-survey771203.csv", "epsi/state_of_affairs/state_of_affairs_2025.csv")
PID_TABLES = ("survey_sme_respondents", "survey_sme_service_ratings", "survey_sme_interests", "survey_sme_offers_needs")
OLD, NEW = "old-key-for-the-rotation-test", "new-key-for-the-rotation-test"


def _pids(url: str) -> set[str]:
    return {r[0] for t in PID_TABLES for r in query(url, f"select respondent_pid from raw.{t}")}  # noqa: S608


@pytest.fixture(scope="module")
def rotated(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rotation")
    inbox = tmp / "inbox"
    for rel in FILES:
        drop(inbox, rel, (SAMPLE_INBOX / rel).read_bytes())
    mp = pytest.MonkeyPatch()
    with isolated_stage(warehouse_url, tmp) as st:
        mp.setenv("SS4GL_PSEUDONYM_KEY", OLD)
        night = RunContext("it-rotation-night", "2026-11-20")
        surveys.extract(night, inbox=str(inbox))
        gate.validate(night, surveys.SOURCE, surveys.prepare)
        gate.load(night, surveys.SOURCE)
        before = _pids(st.url)
        batch_before = batch_of(st.url, "surveys", FILES[0])
        mp.setenv("SS4GL_PSEUDONYM_KEY", NEW)
        backfill = RunContext("it-rotation-backfill", "2026-11-21", mode="backfill")
        from_archive.register(backfill, surveys.SOURCE)
        gate.validate(backfill, surveys.SOURCE, surveys.prepare)
        loaded = gate.load(backfill, surveys.SOURCE)
        yield {
            "url": st.url,
            "before": before,
            "after": _pids(st.url),
            "loaded": loaded,
            "batch_before": batch_before,
            "batch_after": batch_of(st.url, "surveys", FILES[0]),
        }
    mp.undo()


def test_no_old_key_pseudonym_remains(rotated):
    assert rotated["before"] and rotated["after"]
    assert rotated["before"].isdisjoint(rotated["after"])
    assert len(rotated["before"]) == len(rotated["after"])


def test_the_survey_batch_was_reloaded_and_records_its_key(rotated):
    assert rotated["loaded"]["rows"] > 0  # same batch id, other pseudonyms: not "unchanged, already in raw"
    assert rotated["batch_before"]["batch_id"] == rotated["batch_after"]["batch_id"]
    meta = query(
        rotated["url"], "select meta from audit.batches where batch_id = %s", rotated["batch_after"]["batch_id"]
    )[0][0]
    assert meta["pseudonym_key_id"] == key_id(NEW.encode()) != key_id(OLD.encode())
