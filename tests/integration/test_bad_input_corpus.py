"""The bad-input corpus through the real pipeline: `ss4gl run` (real Airflow dag.test, real Postgres, real GX and
dbt, real loopback HTTP) with every bundled good input plus 28 bad survey files (CSV, XLSX, Kobo JSON) and 15 bad
Eurostat bodies, then the next night.

Each bad input is quarantined with exactly its named reason and 0 rows in ``raw``; every good input loads; the
marts are built; the run ends "completed with N quarantined" (exit 3), and the next night retries none of them
(exit 0). ``surveys check`` agrees with the pipeline on every survey file: what it passes loads.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import io
import json
import os
import shutil
import zipfile
import zlib
from pathlib import Path

import orjson
import pytest
import yaml

from ingest.config import CATALOGUE_PATH, SAMPLES_DIR, load_catalogue
from ingest.eurostat.replay import JSON, XML, ReplayServer, Reply, error_json
from tests.conftest import create_database, drop_database, query
from tests.integration._support import SAMPLE_INBOX, SURVEY_TABLES, copy_sample_inbox, drop
from tests.integration.conftest import EXTRACT_CASES, GX_CASES, PARSER_CASES
from tests.integration.test_validation_gate import (
    BASE,
    _base_doc,
    _set_obs_count,
    annual_bad_period,
    duplicate_key,
    geo_gr,
    obs_status_z,
    value_not_numeric,
)
from tests.pipeline.test_nightly import CLUSTERS, ss4gl
from tests.surveys.conftest import edit_csv, edit_json, sample_bytes, set_cell

pytestmark = pytest.mark.timeout(2400)
NIGHT1, NIGHT2 = "2026-11-20", "2026-11-21"
EXIT_QUARANTINED = 3
MAX_BODY = 1_000_000  # the test catalogue's Eurostat body cap (the bundled samples are < 250 kB)


# ------------------------------------------------------------------------------------------ bad surveys
def _soa_csv(label: str, value: str) -> bytes:
    data = (SAMPLE_INBOX / "epsi/state_of_affairs/state_of_affairs_2025.csv").read_bytes()
    lines = data.decode("utf-8-sig").split("\r\n") if b"\r\n" in data else data.decode("utf-8-sig").split("\n")
    out = [f"profile,,{label},{value}" if ln.startswith(f"profile,,{label},") else ln for ln in lines]
    assert out != lines, label
    return ("\ufeff" + "\n".join(out)).encode()


def _epsi_sme(header: str, value: str) -> bytes:
    data, _ = sample_bytes("epsi", "sme_needs")
    return edit_csv(data, "utf-8", ",", lambda rows: set_cell(rows, 2, header, value))


def _kobo(fn) -> bytes:
    data, _ = sample_bytes("mse_cluster", "sme_needs")
    return edit_json(data, fn)


def _deep_kobo() -> bytes:
    data = sample_bytes("mse_cluster", "sme_needs")[0].rstrip()
    assert data.endswith(b"}")
    return data[:-1] + b', "zz": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _xlsx_bomb() -> bytes:
    """A real workbook whose first sheet is padded to ~1 GB of XML that compresses ~1000:1."""
    data, _ = sample_bytes("indescat", "sme_needs")
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                with dst.open(item.filename, "w", force_zip64=True) as fh:
                    fh.write(body[: body.rindex(b"</sheetData>")])
                    chunk = b"<!--" + b" " * (1 << 20) + b"-->"
                    for _ in range(1024):
                        fh.write(chunk)
                    fh.write(body[body.rindex(b"</sheetData>") :])
            else:
                dst.writestr(item, body)
    return out.getvalue()


def _turnover_inf() -> bytes:
    return _soa_csv("member turnover eur", "1e400")


# rel path -> (content, the one problem code it must be quarantined with)
NEW_SURVEY_CASES = {
    "epsi/state_of_affairs/employees-3e9.csv": (
        lambda: _soa_csv("member employees", "3000000000"),
        "value_out_of_range",
    ),
    "epsi/state_of_affairs/turnover-inf.csv": (_turnover_inf, "value_out_of_range"),
    "epsi/sme_needs/nul-in-comment.csv": (lambda: _epsi_sme("COMMENTS", "very\x00useful"), "invalid_character"),
    "epsi/sme_needs/long-comment.csv": (lambda: _epsi_sme("COMMENTS", "useful " * 3000), "text_too_long"),
    "mse_cluster/sme_needs/nul-in-text.json": (
        lambda: _kobo(lambda d: d["results"][1].__setitem__("megjegyzes", "hasznos\x00")),
        "invalid_character",
    ),
    "mse_cluster/sme_needs/deep.json": (_deep_kobo, "json_too_deep"),
    "indescat/sme_needs/bomb.xlsx": (_xlsx_bomb, "compression_bomb"),
}
SURVEY_CASES: dict[str, tuple] = {
    **PARSER_CASES,
    **{rel: case for rel, case in EXTRACT_CASES.items() if case[1] != "duplicate_file"},
    **{rel: (make, "expectation_failed") for rel, (make, _) in GX_CASES.items()},
    **NEW_SURVEY_CASES,
}
TWO_REASONS = {"epsi/sme_needs/pii-in-code-cells.csv": {"unknown_nuts3", "unknown_nace"}}


# ---------------------------------------------------------------------------------------- bad Eurostat
def _gzip_bomb(size: int = 1 << 28) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 22)
    out = [comp.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(out) + comp.flush()


def _jsonstat(mutate):
    def make(cat) -> bytes:
        doc = _set_obs_count(mutate(copy.deepcopy(_base_doc(cat, BASE))))
        return orjson.dumps(doc)

    return make


def _nul_in_geo(doc: dict) -> dict:
    cat = doc["dimension"]["geo"]["category"]
    cat["index"] = {("E\x00S" if c == "ES" else c): p for c, p in cat["index"].items()}
    cat["label"] = {("E\x00S" if c == "ES" else c): v for c, v in cat.get("label", {}).items()}
    return doc


# code -> (reply maker (catalogue -> Reply | bytes), the one problem code)
EUROSTAT_CASES = {
    "zz_html": (
        lambda cat: Reply(200, "text/html", b"<html><title>Maintenance</title><body>back soon</body></html>"),
        "body_html",
    ),
    "zz_error": (lambda cat: Reply(404, JSON, error_json(404, 100, "No results found")), "body_error"),
    "zz_empty": (lambda cat: Reply(200, JSON, b""), "body_empty"),
    "zz_truncated_gzip": (
        lambda cat: Reply(200, JSON, gzip.compress(orjson.dumps(_base_doc(cat, BASE)))[:200]),
        "body_truncated",
    ),
    "zz_garbage": (lambda cat: Reply(200, JSON, bytes(range(256)) * 8), "body_unknown"),
    "zz_not_jsonstat": (lambda cat: Reply(200, JSON, b"[1, 2, 3]"), "body_unknown"),
    "zz_soap_fault": (
        lambda cat: Reply(
            200,
            XML,
            b"<?xml version='1.0'?><soap:Envelope><soap:Body><soap:Fault>"
            b"<faultstring>Internal error</faultstring></soap:Fault>"
            b"</soap:Body></soap:Envelope>",
        ),
        "body_unknown",
    ),
    "zz_gzip_bomb": (lambda cat: Reply(200, JSON, _gzip_bomb()), "body_too_large"),
    "zz_oversize": (lambda cat: Reply(200, JSON, b'{"id": []' + b" " * MAX_BODY + b"}"), "body_too_large"),
    "zz_value_text": (_jsonstat(value_not_numeric), "undecodable"),
    "zz_obs_status": (_jsonstat(obs_status_z), "expectation_failed"),
    "zz_geo_gr": (_jsonstat(geo_gr), "expectation_failed"),
    "zz_key_dup": (_jsonstat(duplicate_key), "expectation_failed"),
    "zz_time": (_jsonstat(annual_bad_period), "expectation_failed"),
    "zz_nul_geo": (_jsonstat(_nul_in_geo), "expectation_failed"),
}


def _test_catalogue(path: Path) -> Path:
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    base = next(d for d in raw["eurostat_datasets"] if d["code"] == BASE)
    for code in EUROSTAT_CASES:
        raw["eurostat_datasets"].append({**copy.deepcopy(base), "code": code, "title": f"bad input {code}"})
    raw["sources"]["eurostat"]["max_body_bytes"] = MAX_BODY
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _toc_with(samples: Path) -> None:
    toc = samples / "toc.txt"
    lines = [
        f'"    bad input {code}"\t"{code}"\t"dataset"\t"01.11.2026"\t"01.11.2026"\t"2015"\t"2024"\t"10"'
        for code in EUROSTAT_CASES
    ]
    toc.write_text(toc.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- the runs
@pytest.fixture(scope="module")
def corpus(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    inbox = tmp / "inbox"
    good = copy_sample_inbox(inbox)
    bad = {rel: drop(inbox, rel, make()) for rel, (make, _code) in SURVEY_CASES.items()}
    samples = tmp / "eurostat"
    shutil.copytree(SAMPLES_DIR / "eurostat", samples)
    _toc_with(samples)
    catalogue = _test_catalogue(tmp / "catalogue.yml")
    url = create_database(warehouse_url)
    with ReplayServer(samples) as server:
        cat = load_catalogue(catalogue)
        for code, (make, _) in EUROSTAT_CASES.items():
            reply = make(cat)
            reply = reply if isinstance(reply, Reply) else Reply(200, JSON, reply)
            server.script(f"/statistics/1.0/data/{code}", [reply] * 6)  # the client retries transient ones
        env = {
            **os.environ,
            "WAREHOUSE_URL": url,
            "SS4GL_HOME": str(tmp / "state"),
            "SURVEY_INBOX": str(inbox),
            "EUROSTAT_BASE_URL": server.base_url,
            "SS4GL_CATALOGUE": str(catalogue),
        }
        env.pop("OFFLINE", None)
        first = ss4gl(["run", "--date", NIGHT1], env, timeout=1500)
        seen = len(server.requests)
        second = ss4gl(["run", "--date", NIGHT2], env, timeout=900)
        requests_night2 = [r.path for r in server.requests[seen:]]
    yield {
        "url": url,
        "inbox": inbox,
        "good": good,
        "bad": bad,
        "first": first,
        "second": second,
        "catalogue": catalogue,
        "requests": requests_night2,
    }
    drop_database(warehouse_url, url)


def _run_ids(url: str) -> list[str]:
    return [r[0] for r in query(url, "select run_id from audit.run_summaries order by finished_at")]


def _batch(url: str, source: str, obj: str) -> tuple[str, str, str | None]:
    rows = query(
        url,
        "select batch_id, status, reason from audit.batches where source = %s and object = %s order by updated_at desc",
        source,
        obj,
    )
    assert rows, f"no batch for {source} {obj}"
    return rows[0]


def _object(rel: str) -> str:
    return rel if rel.count("/") == 2 else f"None/None/{rel}"  # a file at the wrong depth has no cluster


def _error_codes(url: str, batch_id: str) -> set[str]:
    return {
        r[0]
        for r in query(
            url, "select code from audit.quarantine where batch_id = %s and severity in ('error', 'critical')", batch_id
        )
    }


def test_first_night_completes_with_every_bad_input_quarantined(corpus):
    res = corpus["first"]
    failed = [ln for ln in res.stderr.splitlines() if "ALERT" in ln and "quarantined" not in ln]
    assert res.returncode == EXIT_QUARANTINED, failed or res.stderr[-3000:]
    n = len(SURVEY_CASES) + len(EUROSTAT_CASES)
    assert f"COMPLETED WITH {n} QUARANTINED" in res.stderr
    assert f"completed with {n} quarantined" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr
    summary = query(
        corpus["url"], "select summary from audit.run_summaries where run_id = %s", _run_ids(corpus["url"])[0]
    )[0][0]
    assert summary["outcome"] == "completed_with_quarantine" and summary["failed_tasks"] == []
    assert len(summary["quarantined"]) == n
    # one alert line per quarantined batch
    assert sum("quarantined" in line for line in res.stderr.splitlines() if "ALERT" in line) >= n


@pytest.mark.parametrize("rel", sorted(SURVEY_CASES))
def test_bad_survey_file_quarantined_with_its_reason(corpus, rel):
    url = corpus["url"]
    batch_id, status, reason = _batch(url, "surveys", _object(rel))
    assert status == "quarantined" and reason and "\n" not in reason
    expected = TWO_REASONS.get(rel, {SURVEY_CASES[rel][1]})
    assert _error_codes(url, batch_id) == expected
    for table in SURVEY_TABLES:
        assert query(url, f"select count(*) from raw.{table} where batch_id = %s", batch_id) == [(0,)]  # noqa: S608
    assert corpus["bad"][rel].with_name(corpus["bad"][rel].name + ".quarantine.json").is_file()


@pytest.mark.parametrize("code", sorted(EUROSTAT_CASES))
def test_bad_eurostat_body_quarantined_with_its_reason(corpus, code):
    url = corpus["url"]
    batch_id, status, reason = _batch(url, "eurostat", code)
    assert status == "quarantined" and reason and "\n" not in reason
    assert _error_codes(url, batch_id) == {EUROSTAT_CASES[code][1]}
    assert query(url, "select count(*) from raw.eurostat_observations where dataset = %s", code) == [(0,)]
    # every body received was archived as received
    assert query(url, "select count(*) from audit.fetches where object = %s", code)[0][0] >= 1


def test_every_good_input_loaded_and_marts_built(corpus):
    url = corpus["url"]
    good = {p.relative_to(corpus["inbox"]).as_posix() for p in corpus["good"]}
    loaded = {
        r[0] for r in query(url, "select object from audit.batches where source = 'surveys' and status = 'loaded'")
    }
    assert good <= loaded
    real = {d.code for d in load_catalogue().datasets}
    datasets = {r[0] for r in query(url, "select distinct dataset from raw.eurostat_observations")}
    assert datasets == real
    for mart in ("mart_partnership_indicators", "mart_sme_needs", "mart_cluster_kpis"):
        clusters = {r[0] for r in query(url, f"select distinct cluster_id from marts.{mart}")}  # noqa: S608
        assert clusters == CLUSTERS, mart


def test_next_night_retries_nothing(corpus):
    res = corpus["second"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    url = corpus["url"]
    second = _run_ids(url)[1]
    assert query(url, "select count(*) from audit.batches where run_id = %s", second) == [(0,)]
    skipped = dict(query(url, "select object, decision from audit.dataset_checks where run_id = %s", second))
    assert all(skipped[code] == "skip" for code in EUROSTAT_CASES)
    assert not any(p.startswith("/statistics/1.0/data/zz_") for p in corpus["requests"])


def test_release_lets_the_next_night_try_again(corpus):
    env = {**os.environ, "WAREHOUSE_URL": corpus["url"]}
    listed = ss4gl(["quarantine", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["object"] for r in rows if r["source"] == "eurostat"} == set(EUROSTAT_CASES)
    res = ss4gl(["quarantine", "release", "surveys", "epsi/sme_needs/likert-7.csv"], env)
    assert res.returncode == 0 and "released" in res.stdout, res.stderr
    again = ss4gl(["quarantine", "release", "surveys", "epsi/sme_needs/likert-7.csv"], env)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
    status = query(corpus["url"], "select status from audit.batches where object = 'epsi/sme_needs/likert-7.csv'")
    assert status == [("released",)]


def test_surveys_check_agrees_with_the_pipeline(corpus, monkeypatch):
    """A file `surveys check` passes loads; every file it refuses was quarantined."""
    from ingest.surveys.commands import cmd_check

    monkeypatch.setenv("SS4GL_CATALOGUE", str(corpus["catalogue"]))
    for path in [*corpus["good"], *corpus["bad"].values()]:
        out = io.StringIO()
        args = argparse.Namespace(file=path, cluster=None, instrument=None, max_bytes=None)
        code = cmd_check(args, out=out)
        rel = path.relative_to(corpus["inbox"]).as_posix()
        status = _batch(corpus["url"], "surveys", _object(rel))[1]
        assert (code == 0) == (status == "loaded"), (rel, code, status, out.getvalue()[-500:])
