"""Every synthetic sample parses cleanly, is reproducible, matches the migration, leaks no personal data."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from ingest.surveys.parse import ParseResult, parse_file
from ingest.surveys.spec import contract_instruments, load_contract
from tests.surveys.conftest import KEY, parse
from tools.survey_samples import INBOX, SAMPLES, SampleSpec, render, sample_path, sample_people

MIGRATION = Path(__file__).resolve().parents[2] / "ingest" / "migrations" / "0002_surveys.sql"
SERVICES = 13


def _parse(spec: SampleSpec) -> ParseResult:
    return parse(sample_path(spec).read_bytes(), spec.filename, spec.cluster, spec.instrument)


@pytest.mark.parametrize("spec", SAMPLES, ids=lambda s: f"{s.cluster}/{s.instrument}/{s.filename}")
def test_sample_parses_ok_with_expected_rows(spec: SampleSpec) -> None:
    r = _parse(spec)
    assert r.ok, [p.message for p in r.errors]
    assert r.codebook == spec.codebook
    assert r.wave == spec.wave
    for name, df in r.tables.items():
        assert list(df.columns[:3]) == ["file_sha256", "cluster", "wave"], name
        assert (df["cluster"] == spec.cluster).all() and (df["wave"] == spec.wave).all()
    if spec.instrument == "sme_needs":
        assert r.row_counts["survey_sme_respondents"] == spec.respondents
        assert r.row_counts["survey_sme_service_ratings"] == spec.respondents * SERVICES
        ratings = r.tables["survey_sme_service_ratings"]
        assert ratings["importance"].dropna().between(1, 5).all()
        assert ratings["satisfaction"].dropna().between(1, 5).all()
        assert r.tables["survey_sme_respondents"]["respondent_pid"].is_unique
    else:
        assert r.row_counts == {
            "survey_soa_profile": 1,
            "survey_soa_kpis": 1,
            "survey_soa_goals": 4,
            "survey_soa_figures": 4,
            "survey_soa_swot": 8,
            "survey_soa_practices": 2,
        }
        assert r.tables["survey_soa_profile"]["note"].str.contains("SYNTHETIC").all()


def test_only_expected_warnings_in_samples() -> None:
    codes = {p.code for spec in SAMPLES for p in _parse(spec).problems}
    assert codes <= {"formula_like"}  # EPSI comment "-20% energy ..." is flagged but loads


@pytest.mark.parametrize("spec", SAMPLES, ids=lambda s: f"{s.cluster}/{s.filename}")
def test_regeneration_is_byte_identical(spec: SampleSpec) -> None:
    assert render(spec) == sample_path(spec).read_bytes(), "run: python -m tools.survey_samples"


def test_samples_cover_all_clusters_both_instruments_and_stay_small() -> None:
    from ingest.config import load_catalogue

    clusters = {c.id for c in load_catalogue().clusters}
    assert {(s.cluster, s.instrument) for s in SAMPLES} == {(c, i) for c in clusters for i in contract_instruments()}
    total = sum(p.stat().st_size for p in INBOX.rglob("*") if p.is_file())
    assert total < 3_000_000
    assert "SYNTHETIC" in (INBOX / "README.md").read_text(encoding="utf-8")


def _raw_text(data: bytes) -> str:
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            data = b"".join(z.read(n) for n in z.namelist())
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _all_text(r: ParseResult) -> str:
    return "\n".join(df.astype("string").fillna("").to_csv(index=False) for df in r.tables.values())


@pytest.mark.parametrize("spec", [s for s in SAMPLES if s.instrument == "sme_needs"], ids=lambda s: s.filename)
def test_no_personal_data_in_tables(spec: SampleSpec) -> None:
    raw = _raw_text(sample_path(spec).read_bytes())
    r = _parse(spec)
    text = _all_text(r)
    people = sample_people(spec)
    for p in people:
        assert p["contact_email"] in raw and p["contact_name"] in raw  # the sample really carries them ...
        for value in (
            p["contact_name"],
            p["contact_email"],
            p["contact_phone"],
            p["contact_email"].split("@")[0],
        ):
            assert value not in text  # ... and the parser never lets it through
    assert "@example.invalid" not in text
    assert not re.search(r"\+\d{2} \d", text)
    assert "[email]" in text and "[phone]" in text  # contact details typed into free text were scrubbed
    for p in r.problems:
        assert "@" not in p.message


def _migration_columns() -> dict[str, list[str]]:
    sql = MIGRATION.read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r"create table if not exists raw\.(\w+) \((.*?)\n\);", sql, re.S):
        cols = [
            ln.split()[0] for ln in m[2].strip().splitlines() if ln.strip() and not ln.strip().startswith("primary")
        ]
        out[m[1]] = cols
    return out


def test_migration_matches_frames() -> None:
    cols = _migration_columns()
    expected_tables = {t for i in contract_instruments() for t in load_contract(i).tables}
    assert set(cols) == expected_tables
    seen = set()
    for spec in SAMPLES:
        for name, df in _parse(spec).tables.items():
            assert ["batch_id", *df.columns] == cols[name], name
            seen.add(name)
    assert seen == expected_tables
    sql = MIGRATION.read_text(encoding="utf-8").lower()
    assert "drop " not in sql and sql.count("create table if not exists") == len(expected_tables)


def test_same_file_same_pseudonyms_other_key_other_pseudonyms() -> None:
    spec = SAMPLES[0]
    data = sample_path(spec).read_bytes()
    a = parse_file(data, spec.filename, spec.cluster, spec.instrument, key=KEY)
    b = parse_file(data, spec.filename, spec.cluster, spec.instrument, key=KEY)
    c = parse_file(data, spec.filename, spec.cluster, spec.instrument, key=b"another-key-0123456789")
    pa, pb, pc = (x.tables["survey_sme_respondents"]["respondent_pid"] for x in (a, b, c))
    pd.testing.assert_series_equal(pa, pb)
    assert set(pa).isdisjoint(set(pc))
