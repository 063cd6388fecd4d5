"""Validation gate, end to end at the stage level: real loopback HTTP (ReplayServer), real archive, real
decoder/parser, real GX, real Postgres.

One Eurostat run fetches the 14 bundled sample datasets plus one crafted JSON-stat payload per critical
expectation of ``expectations/eurostat_observations.json`` (scripted replies of the replay server, derived
from the ``nrg_ind_ren`` sample); one survey run reads a temp inbox holding every bundled sample file plus
crafted bad files (GX-level and parser-level). Each run goes extract -> gate.validate -> gate.load once for
the module; the tests then read the warehouse, the validate summary and the Data Docs.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable

import orjson
import pytest

from ingest.config import EXPECTATIONS_DIR, SAMPLES_DIR, Catalogue, EurostatDataset, load_catalogue
from ingest.eurostat.replay import JSON, ReplayServer, Reply, filter_jsonstat
from ingest.tasks import eurostat, gate
from ingest.tasks.common import RunContext
from ingest.validation import suite_names
from tests.integration._support import (
    batch_of,
    isolated_stage,
    quarantine_rows,
    query,
    reason_beside,
    survey_rows_for,
)
from tests.integration.conftest import GX_CASES

BASE = "nrg_ind_ren"  # small, unit PC, countries + EU27_2020, values and flags
DATE = "2026-11-26"
SUITE = "eurostat_observations"


# ------------------------------------------------------------------------------------ JSON-stat crafting
def _dim_codes(doc: dict, dim: str) -> list[str]:
    index = doc["dimension"][dim]["category"]["index"]
    return sorted(index, key=index.get) if isinstance(index, dict) else list(index)


def _rename(doc: dict, dim: str, old: str, new: str) -> dict:
    cat = doc["dimension"][dim]["category"]
    cat["index"] = {(new if c == old else c): p for c, p in cat["index"].items()}
    cat["label"] = {(new if c == old else c): v for c, v in cat.get("label", {}).items()}
    return doc


def _drop_size1_dim(doc: dict, dim: str) -> dict:
    i = doc["id"].index(dim)
    assert doc["size"][i] == 1
    doc["id"].pop(i)
    doc["size"].pop(i)
    doc["dimension"].pop(dim)
    return doc


def _valued(doc: dict) -> list[str]:
    return [k for k, v in doc["value"].items() if v is not None]


def _set_obs_count(doc: dict, n: int | None = None) -> dict:
    n = len(_valued(doc)) if n is None else n
    for ann in doc["extension"]["annotation"]:
        if ann.get("type") == "OBS_COUNT":
            ann["title"] = str(n)
    return doc


def no_geo(doc):
    return _drop_size1_dim(filter_jsonstat(doc, {"geo": ["ES"]}), "geo")


def dataset_dimension(doc):
    doc["id"].insert(0, "DATASET")
    doc["size"].insert(0, 1)
    doc["dimension"]["DATASET"] = {
        "label": "Dataset",
        "category": {"index": {"nama_10r_2gdp": 0}, "label": {"nama_10r_2gdp": "other"}},
    }
    return doc


def no_time_dimension(doc):
    i = doc["id"].index("time")
    doc["id"][i] = "period"
    doc["dimension"]["period"] = doc["dimension"].pop("time")
    doc.pop("role", None)
    return doc


def code_not_sdmx(doc):
    return _rename(doc, "nrg_bal", "REN", "REN BAL")


def code_not_in_code_list(doc):
    # Two codes share a position: the decoder leaves the other position without a code (""), a code the
    # dimension does not list (and, being empty, not an SDMX code either).
    cat = doc["dimension"]["size_emp"]["category"]
    cat["index"] = dict.fromkeys(cat["index"], 1)
    return doc


def geo_gr(doc):
    return _rename(doc, "geo", "ES", "GR")


def null_value_without_status(doc):
    total = 1
    for n in doc["size"]:
        total *= n
    free = next(p for p in range(total) if str(p) not in doc["value"] and str(p) not in doc["status"])
    doc["status"][str(free)] = ""
    return doc


def obs_status_z(doc):
    doc["status"][_valued(doc)[0]] = "z"
    return doc


def conf_status_d(doc):
    doc["status"][_valued(doc)[1]] = "p|D"
    return doc


def annual_bad_period(doc):
    return _rename(doc, "time", "2016", "2016-13")


def quarterly_freq_annual_periods(doc):
    return _rename(doc, "freq", "A", "Q")


def other_freq_bad_period(doc):
    return _rename(_rename(doc, "freq", "A", "H"), "time", "2016", "2016H1")


def no_freq_bad_period(doc):
    return _rename(_drop_size1_dim(doc, "freq"), "time", "2016", "2016-13")


def duplicate_key(doc):
    codes = _dim_codes(doc, "geo")
    doc["dimension"]["geo"]["category"]["index"] = ["ES" if c == "FR" else c for c in codes]
    return doc


def obs_count_wrong(doc):
    return _set_obs_count(doc, len(_valued(doc)) + 7)


def value_not_numeric(doc):
    doc["value"][_valued(doc)[0]] = "n/a"
    return doc


def percentage_over_100(doc):
    doc["value"][_valued(doc)[0]] = 150.0
    return doc


def label_only_category(doc):
    doc["dimension"]["nrg_bal"]["category"].pop("index")  # allowed by JSON-stat for a single category
    return doc


# case -> (mutation, critical rules expected to fail). One bad batch per critical expectation.
CRITICAL_CASES: dict[str, tuple[Callable[[dict], dict], set[str]]] = {
    "zz_no_geo": (no_geo, {"columns_present"}),
    "zz_dataset_dim": (dataset_dimension, {"dataset_matches_batch"}),
    "zz_no_time": (no_time_dimension, {"key_not_null"}),
    "zz_code_format": (code_not_sdmx, {"dimension_code_well_formed"}),
    "zz_code_list": (code_not_in_code_list, {"dimension_code_in_code_list", "dimension_code_well_formed"}),
    "zz_geo_gr": (geo_gr, {"geo_code_valid"}),
    "zz_null_value": (null_value_without_status, {"null_value_has_status"}),
    "zz_obs_status": (obs_status_z, {"obs_status_vocabulary"}),
    "zz_conf_status": (conf_status_d, {"conf_status_vocabulary"}),
    "zz_time_annual": (annual_bad_period, {"time_parses_for_frequency"}),
    "zz_time_quarterly": (quarterly_freq_annual_periods, {"time_parses_for_frequency"}),
    "zz_time_other_freq": (other_freq_bad_period, {"time_parses_for_frequency"}),
    "zz_time_no_freq": (no_freq_bad_period, {"time_parses_for_frequency"}),
    "zz_key_dup": (duplicate_key, {"key_unique"}),
    "zz_obs_count": (obs_count_wrong, {"row_count_matches_obs_count"}),
}
# Not decodable: the decoder only ever yields float64 values, so `value_numeric` is guarded before GX.
REJECTED_CASES = {"zz_value_text": value_not_numeric}
BASE_OF = {"zz_code_list": "isoc_eb_ai"}  # needs a dimension of size 2 that is not geo
PASSING_CASES = {"zz_warn_pct": percentage_over_100, "zz_label_only": label_only_category}


def _base_doc(cat: Catalogue, base: str = BASE) -> dict:
    """The base sample exactly as the replay server answers the client's request for it."""
    ds = cat.dataset(base)
    q = {k: list(v) for k, v in ds.filters.items()}
    if cat.geo_codes(ds):  # [] = no geo parameter (all_regions)
        q["geo"] = cat.geo_codes(ds)
    q["sinceTimePeriod"] = [str(cat.eurostat["since_time_period"])]
    return filter_jsonstat(orjson.loads((SAMPLES_DIR / "eurostat" / f"{base}.json").read_bytes()), q)


# ------------------------------------------------------------------------------------------ the runs
@pytest.fixture(scope="module")
def run(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gate")
    samples = tmp / "eurostat"
    shutil.copytree(SAMPLES_DIR / "eurostat", samples)
    out: dict = {}
    with ReplayServer(samples) as server, isolated_stage(warehouse_url, tmp, EUROSTAT_BASE_URL=server.base_url) as st:
        base_cat = load_catalogue()
        crafted = {**{k: v[0] for k, v in CRITICAL_CASES.items()}, **REJECTED_CASES, **PASSING_CASES}
        extra = []
        for code, mutate in crafted.items():
            base_ds = base_cat.dataset(BASE_OF.get(code, BASE))
            doc = mutate(copy.deepcopy(_base_doc(base_cat, base_ds.code)))
            if code != "zz_obs_count":
                _set_obs_count(doc)
            server.script(f"/statistics/1.0/data/{code}", [Reply(200, JSON, orjson.dumps(doc))])
            extra.append(
                EurostatDataset(
                    code, "test", f"crafted from {base_ds.code}: {code}", base_ds.geo, dict(base_ds.filters)
                )
            )
        cat = Catalogue(base_cat.clusters, base_cat.aggregates, base_cat.sources, base_cat.datasets + tuple(extra))
        out["real_datasets"] = [d.code for d in base_cat.datasets]

        ctx = RunContext("it-gate-eurostat", DATE)
        for code in eurostat.plan(ctx, cat):
            eurostat.extract(ctx, code, cat)
        out["eurostat_error"] = gate.validate(ctx, eurostat.SOURCE, eurostat.prepare)["summary"]
        out["eurostat_load"] = gate.load(ctx, eurostat.SOURCE, after_load=eurostat.remember_loaded)
        out["stage"] = st
        out["docs"] = st.home / "docs" / "gx" / "eurostat" / "index.html"
        yield out


def _failed(url: str, batch_id: str, severity: str = "critical") -> dict[str, dict]:
    rows = query(
        url,
        "select expectation, column_name, unexpected_count, element_count, sample_values, details"
        " from audit.validation_results where batch_id = %s and not success and severity = %s",
        batch_id,
        severity,
    )
    return {
        r[0]: {"column": r[1], "unexpected": r[2], "elements": r[3], "samples": r[4], "details": r[5]} for r in rows
    }


# ------------------------------------------------------------------------------------------ Eurostat
@pytest.mark.parametrize("code", sorted(CRITICAL_CASES))
def test_each_critical_expectation_quarantines_its_batch(run, code):
    url = run["stage"].url
    expected = CRITICAL_CASES[code][1]
    b = batch_of(url, "eurostat", code)
    assert b["status"] == "quarantined", b
    assert query(url, "select count(*) from raw.eurostat_observations where dataset = %s", code) == [(0,)]
    assert query(url, "select count(*) from raw.eurostat_observations where batch_id = %s", b["batch_id"]) == [(0,)]
    failed = _failed(url, b["batch_id"])
    assert set(failed) == expected, failed
    assert b["reason"] and any(rule in b["reason"] for rule in expected)
    q = quarantine_rows(url, b["batch_id"])
    assert q and all(r["code"] == "expectation_failed" and r["severity"] == "critical" for r in q)
    assert {rule for rule in expected if any(rule in r["message"] for r in q)} == expected
    assert all(r["file"] == code for r in q)
    # The task's summary names the batch, the rule, counts and sample values.
    msg = run["eurostat_error"]
    block = next(part for part in msg.split("FAILED suite ")[1:] if f"({code})" in part.splitlines()[0])
    for rule in expected:
        line = next(ln for ln in block.splitlines() if f"[critical] {rule}" in ln)
        assert "expected" in line and "found" in line
        assert ("unexpected of" in line and "e.g." in line) or "observed" in line, line


def test_failure_details_name_counts_and_samples(run):
    url = run["stage"].url
    geo = _failed(url, batch_of(url, "eurostat", "zz_geo_gr")["batch_id"])["geo_code_valid"]
    assert geo["column"] == "geo" and geo["unexpected"] > 0 and "GR" in geo["samples"]
    oc = _failed(url, batch_of(url, "eurostat", "zz_obs_count")["batch_id"])["row_count_matches_obs_count"]
    assert oc["details"].get("observed") is not None
    dup = _failed(url, batch_of(url, "eurostat", "zz_key_dup")["batch_id"])["key_unique"]
    assert dup["unexpected"] > 0 and any("ES" in s for s in dup["samples"])
    st = _failed(url, batch_of(url, "eurostat", "zz_obs_status")["batch_id"])["obs_status_vocabulary"]
    assert st["unexpected"] == 1 and st["samples"] == ["z"]


def test_every_critical_rule_of_the_suite_has_a_case():
    suite = json.loads((EXPECTATIONS_DIR / f"{SUITE}.json").read_text())
    critical = {e["id"] for e in suite["expectations"] if e["meta"]["severity"] == "critical"}
    covered = set().union(*(rules for _, rules in CRITICAL_CASES.values()))
    # value_numeric cannot fail after decoding (float64 by construction); its payload is rejected earlier.
    assert critical - covered == {"value_numeric"}


def test_undecodable_value_is_quarantined_before_gx(run):
    url = run["stage"].url
    b = batch_of(url, "eurostat", "zz_value_text")
    assert b["status"] == "quarantined"
    q = quarantine_rows(url, b["batch_id"])
    assert q and q[0]["severity"] in ("error", "critical") and "n/a" in q[0]["message"]
    assert query(url, "select count(*) from audit.validation_runs where batch_id = %s", b["batch_id"]) == [(0,)]
    assert "zz_value_text" in run["eurostat_error"]
    assert query(url, "select count(*) from raw.eurostat_observations where dataset = 'zz_value_text'") == [(0,)]


def test_warning_only_batch_loads(run):
    url = run["stage"].url
    b = batch_of(url, "eurostat", "zz_warn_pct")
    assert b["status"] == "loaded" and b["rows_loaded"] == b["rows_parsed"] > 0
    warn = _failed(url, b["batch_id"], "warning")
    assert set(warn) == {"percentage_in_0_100"} and warn["percentage_in_0_100"]["unexpected"] == 1
    assert _failed(url, b["batch_id"]) == {}
    assert query(
        url, "select count(*) from raw.eurostat_observations where dataset = 'zz_warn_pct' and value = 150"
    ) == [(1,)]
    assert "batch eurostat:zz_warn_pct:" not in run["eurostat_error"]


def test_label_only_category_loads(run):
    b = batch_of(run["stage"].url, "eurostat", "zz_label_only")
    assert b["status"] == "loaded" and b["rows_loaded"] > 0


def test_every_other_eurostat_batch_validates_and_loads(run):
    url = run["stage"].url
    good = run["real_datasets"] + sorted(PASSING_CASES)
    for code in good:
        b = batch_of(url, "eurostat", code)
        assert b["status"] == "loaded", (code, b)
        assert b["rows_loaded"] == b["rows_parsed"] > 0
        n = query(url, "select count(*) from raw.eurostat_observations where dataset = %s", code)[0][0]
        assert n == b["rows_loaded"]
        assert f"batch eurostat:{code}:" not in run["eurostat_error"]
    assert run["eurostat_load"]["batches"] == len(good)
    state = {r[0] for r in query(url, "select object from audit.source_state where source = 'eurostat'")}
    assert state == set(good)
    bad = len(CRITICAL_CASES) + len(REJECTED_CASES)
    assert run["eurostat_error"].startswith(f"{bad} eurostat batch(es) quarantined, nothing from them loaded")


def test_nightly_sample_batches_pass_every_suite(run, survey_run):
    """The bundled samples (14 datasets, every survey file) pass every suite of expectations/ they are bound for."""
    ok = query(
        run["stage"].url,
        "select suite, success from audit.validation_runs where batch_id = any(%s)",
        [batch_of(run["stage"].url, "eurostat", c)["batch_id"] for c in run["real_datasets"]],
    )
    url = survey_run.stage.url
    ids = [batch_of(url, "surveys", survey_run.rel(p))["batch_id"] for p in survey_run.sample_files]
    ok += query(url, "select suite, success from audit.validation_runs where batch_id = any(%s)", ids)
    assert ok and all(success for _, success in ok), [r for r in ok if not r[1]]
    # sdmx_observations validates other providers' datasets, of which the bundled partnership has none
    # (tests/integration/test_sdmx_stage.py runs it)
    assert {suite for suite, _ in ok} == set(suite_names()) - {"sdmx_observations"}


def test_data_docs_built(run, survey_run):
    for index in (run["docs"], survey_run.stage.home / "docs" / "gx" / "surveys" / "index.html"):
        assert index.is_file() and index.stat().st_size > 0
    assert SUITE in run["docs"].read_text(encoding="utf-8", errors="replace")
    html = (survey_run.stage.home / "docs" / "gx" / "surveys" / "index.html").read_text(
        encoding="utf-8", errors="replace"
    )
    assert "survey_sme_respondents" in html


# ------------------------------------------------------------------------------------------ surveys
@pytest.mark.parametrize("rel", sorted(GX_CASES))
def test_survey_gx_failure_quarantines_the_file(survey_run, rel):
    url, inbox = survey_run.stage.url, survey_run.inbox
    year = GX_CASES[rel][1]
    b = batch_of(url, "surveys", rel)
    assert b["status"] == "quarantined"
    assert sum(survey_rows_for(url, b["sha256"][0]).values()) == 0
    failed = query(
        url,
        "select suite, expectation, column_name, sample_values from audit.validation_results"
        " where batch_id = %s and not success and severity = 'critical'",
        b["batch_id"],
    )
    assert failed and {(e, c) for _, e, c, _ in failed} == {("within_contract_range", "wave")}
    assert {s for s, *_ in failed} >= {"survey_sme_respondents", "survey_sme_service_ratings"}
    assert all(year in map(str, samples) for *_, samples in failed), failed
    q = quarantine_rows(url, b["batch_id"])
    assert q and all(r["code"] == "expectation_failed" for r in q if r["severity"] == "critical")
    assert any("within_contract_range column wave" in r["message"] for r in q)
    doc = reason_beside(inbox / rel)
    assert any(p["code"] == "expectation_failed" and "wave" in p["message"] for p in doc["problems"])
    msg = survey_run.error
    assert f"FAILED suite survey_sme_respondents on batch {b['batch_id']}" in msg
    line = next(ln for ln in msg.splitlines() if "within_contract_range column wave" in ln and year in ln)
    assert "unexpected of" in line and "e.g." in line


def test_survey_parser_failure_quarantines_before_gx(survey_run):
    url = survey_run.stage.url
    rel = "epsi/sme_needs/likert-7.csv"
    b = batch_of(url, "surveys", rel)
    assert b["status"] == "quarantined"
    assert query(url, "select count(*) from audit.validation_runs where batch_id = %s", b["batch_id"]) == [(0,)]
    assert f"{rel}: likert-7.csv: row 3, column IMP[digi]" in survey_run.error


def test_every_sample_survey_file_still_loads(survey_run):
    url = survey_run.stage.url
    for p in survey_run.sample_files:
        b = batch_of(url, "surveys", survey_run.rel(p))
        assert b["status"] == "loaded", (p, b)
        assert sum(survey_rows_for(url, b["sha256"][0]).values()) == b["rows_loaded"] > 0
