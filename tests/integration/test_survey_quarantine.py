"""Survey files through the real stages with a temp inbox: surveys.extract -> gate.validate(surveys.prepare,
on_quarantine=surveys.write_reason) -> gate.load (the shared ``survey_run`` of conftest.py).

Each bad file is quarantined with a machine-readable reason beside it (``<file>.quarantine.json``) and in
``audit.quarantine``, nothing from it is loaded, and every other file still loads."""

from __future__ import annotations

import pytest

from tests.integration._support import batch_of, quarantine_rows, query, reason_beside, survey_rows_for
from tests.integration.conftest import (
    EPSI_FILE,
    EXTRACT_CASES,
    FORMULA,
    GX_CASES,
    PARSER_CASES,
    WARNING_CASES,
)

LOCATED = {  # problem code -> (row, column) the reason must point at
    "encoding": (4, "COMMENTS"),
    "wrong_delimiter": (1, None),
    "missing_required_column": (1, "NACE"),
    "duplicate_respondent": (59, "id"),
    "likert_out_of_range": (3, "IMP[digi]"),
    "unknown_cluster": (4, "Clúster"),
    "unknown_nuts3": (2, "NUTS3"),
    "unknown_nace": (2, "NACE"),
    "unknown_service": (3, "szolgaltatasok/igenybe_vett"),
    "header_only": (2, "-"),
}


def _object(rel: str) -> str:
    return rel if rel.count("/") == 2 else f"None/None/{rel}"  # a file at the wrong depth has no cluster


def _assert_quarantined(run, rel: str, code: str) -> dict:
    url = run.stage.url
    b = batch_of(url, "surveys", _object(rel))
    assert b["status"] == "quarantined", (rel, b)
    assert b["reason"]
    # nothing loaded from it
    assert b["rows_loaded"] is None
    assert sum(survey_rows_for(url, b["sha256"][0]).values()) == 0 or code == "duplicate_file"
    for (t,) in query(
        url,
        "select table_name from information_schema.tables where table_schema = 'raw' and table_name like 'survey%%'",
    ):
        assert query(url, f"select count(*) from raw.{t} where batch_id = %s", b["batch_id"]) == [(0,)]  # noqa: S608
    # machine-readable reason in the warehouse ...
    q = [r for r in quarantine_rows(url, b["batch_id"]) if r["code"] == code]
    assert q, quarantine_rows(url, b["batch_id"])
    p = q[0]
    assert p["severity"] == ("critical" if code == "expectation_failed" else "error")
    assert p["message"] and p["file"]
    assert rel.rsplit("/", 1)[-1] in p["message"] or rel in p["message"]
    # ... and beside the file
    doc = reason_beside(run.inbox / rel)
    side = [x for x in doc["problems"] if x["code"] == code]
    assert side and set(side[0]) == {"severity", "code", "file", "row", "column", "expected", "found", "message"}
    assert side[0]["message"] == p["message"]
    assert doc["file"]
    return p


@pytest.mark.parametrize("rel", sorted(PARSER_CASES))
def test_parser_rejects_bad_file(survey_run, rel):
    code = PARSER_CASES[rel][1]
    p = _assert_quarantined(survey_run, rel, code)
    if code in LOCATED:
        row, column = LOCATED[code]
        assert p["row"] == row
        if column is not None:
            assert p["column"] == column
    assert p["expected"] is not None
    # no GX verdict for a file the parser rejected; the task summary lists it
    b = batch_of(survey_run.stage.url, "surveys", rel)
    assert query(
        survey_run.stage.url, "select count(*) from audit.validation_runs where batch_id = %s", b["batch_id"]
    ) == [(0,)]
    assert f"\n{rel}: " in survey_run.error


@pytest.mark.parametrize("rel", sorted(EXTRACT_CASES))
def test_unattributable_or_duplicate_file_quarantined_at_extract(survey_run, rel):
    code = EXTRACT_CASES[rel][1]
    _assert_quarantined(survey_run, rel, code)
    b = batch_of(survey_run.stage.url, "surveys", _object(rel))
    assert query(
        survey_run.stage.url, "select count(*) from audit.validation_runs where batch_id = %s", b["batch_id"]
    ) == [(0,)]


@pytest.mark.parametrize("rel", sorted(GX_CASES))
def test_gx_rejects_file_the_parser_accepts(survey_run, rel):
    _assert_quarantined(survey_run, rel, "expectation_failed")


def test_same_file_dropped_twice_is_loaded_once(survey_run):
    url = survey_run.stage.url
    original = batch_of(url, "surveys", EPSI_FILE)
    copy = batch_of(url, "surveys", "epsi/sme_needs/results-survey771203_again.csv")
    assert original["sha256"] == copy["sha256"]
    assert original["status"] == "loaded" and copy["status"] == "quarantined"
    loaded = query(
        url, "select count(*) from audit.batches where status = 'loaded' and sha256 = %s", original["sha256"]
    )
    assert loaded == [(1,)]
    rows = query(
        url,
        "select count(*), count(distinct respondent_pid) from raw.survey_sme_respondents where file_sha256 = %s",
        original["sha256"][0],
    )
    assert rows[0][0] == rows[0][1] == 57
    # the next night the same files are in the inbox again: nothing new, nothing reloaded
    assert survey_run.second_extract["new"] == 0
    assert survey_run.second_extract["already_processed"] == survey_run.extract["new"]
    assert survey_run.second_validate["validated"] == 0
    assert query(url, "select count(*) from audit.batches where run_id = 'it-surveys-2'") == [(0,)]


def test_unknown_extra_column_is_only_a_warning_and_loads(survey_run):
    url = survey_run.stage.url
    rel = "epsi/sme_needs/results-survey771203-extra-column.csv"
    b = batch_of(url, "surveys", rel)
    assert b["status"] == "loaded" and b["rows_loaded"] == b["rows_parsed"] > 0
    warn = [r for r in quarantine_rows(url, b["batch_id"]) if r["code"] == "unknown_column"]
    assert warn and warn[0]["severity"] == "warning" and warn[0]["column"] == "Q99_NEW" and warn[0]["row"] == 1
    assert all(r["severity"] == "warning" for r in quarantine_rows(url, b["batch_id"]))
    assert query(
        url, "select distinct wave from raw.survey_sme_respondents where file_sha256 = %s", b["sha256"][0]
    ) == [(2024,)]
    assert not (survey_run.inbox / (rel + ".quarantine.json")).exists()
    assert rel not in survey_run.error


def test_formula_injection_cells_stored_as_text_and_flagged(survey_run):
    url = survey_run.stage.url
    rel = "indescat/sme_needs/formula-cells-2023.xlsx"
    b = batch_of(url, "surveys", rel)
    assert b["status"] == "loaded"
    warn = {(r["row"], r["column"]) for r in quarantine_rows(url, b["batch_id"]) if r["code"] == "formula_like"}
    assert warn == {(2, "Qué puede ofrecer (texto libre)"), (3, "Comentarios")}
    rows = query(
        url,
        "select source_row, offers_text, comments, formula_like from raw.survey_sme_respondents"
        " where file_sha256 = %s and source_row in (2, 3, 4) order by source_row",
        b["sha256"][0],
    )
    assert rows[0][1] == FORMULA and rows[0][3] is True
    assert rows[1][2] == "@SUM(A1:A9)" and rows[1][3] is True
    assert rows[2][3] is False
    assert WARNING_CASES[rel][1] == "formula_like"


def test_every_other_file_loaded(survey_run):
    url = survey_run.stage.url
    good = [survey_run.rel(p) for p in survey_run.sample_files] + sorted(WARNING_CASES)
    for rel in good:
        b = batch_of(url, "surveys", rel)
        assert b["status"] == "loaded", (rel, b)
        assert sum(survey_rows_for(url, b["sha256"][0]).values()) == b["rows_loaded"] > 0
    assert survey_run.load["batches"] == len(good)
    statuses = dict(
        query(url, "select status, count(*) from audit.batches where run_id = 'it-surveys-1' group by status")
    )
    bad = len(PARSER_CASES) + len(EXTRACT_CASES) + len(GX_CASES)
    assert statuses == {"loaded": len(good), "quarantined": bad}
    # validate fails with a summary naming every file quarantined by the parser or by GX
    assert survey_run.error.startswith(f"{len(PARSER_CASES) + len(GX_CASES)} surveys batch(es) quarantined")
    assert not any(f"\n{rel}: " in survey_run.error for rel in good)


def test_readme_in_inbox_is_ignored(survey_run):
    assert query(survey_run.stage.url, "select count(*) from audit.batches where object like '%%README%%'") == [(0,)]
