"""Eurostat suite: one bad batch per critical expectation (real GX runs, one Validator for the module)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.validation import Validator, Verdict
from ingest.validation.suites import load_suite

SUITE = "eurostat_observations"
DATASET = "nama_10r_2gdp"


def s(values: list) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype="str")


def good_frame() -> pd.DataFrame:
    """A decode-shaped batch: every frequency, values with and without flags, countries, NUTS, aggregates."""
    rows = [
        # freq, unit, geo, time, value, obs_status, conf_status
        ("A", "PC_GDP", "ES51", "2020", 1.5, None, None),
        ("A", "PC_GDP", "NL41", "2020", np.nan, "m", None),
        ("A", "NR", "EU27_2020", "2020", 4.4e8, "bp", None),
        ("A", "NR", "ESZZ", "2020", np.nan, None, "C"),
        ("A", "NR", "EL30", "2021", 12.0, "p", "N"),
        ("Q", "NR", "UK", "2021-Q4", 3.0, None, None),
        ("M", "NR", "FRK27", "2021-12", 3.0, None, None),
        ("S", "NR", "HU32", "2021-S2", 3.0, None, None),
        ("W", "NR", "BE100", "2021-W53", 3.0, None, None),
        ("D", "NR", "EA20", "2021-02-28", 3.0, None, None),
    ]
    cols = list(zip(*rows, strict=True))
    n = len(rows)
    return pd.DataFrame(
        {
            "dataset": s([DATASET] * n),
            "freq": s(list(cols[0])),
            "unit": s(list(cols[1])),
            "geo": s(list(cols[2])),
            "time": s(list(cols[3])),
            "value": np.array(cols[4], dtype=np.float64),
            "obs_status": s(list(cols[5])),
            "conf_status": s(list(cols[6])),
            "source_updated_at": s(["2026-02-10T11:00:00+01:00"] * n),
        }
    )


def context(frame: pd.DataFrame, **extra: object) -> dict:
    ctx: dict = {"dataset": DATASET, "obs_count": len(frame), "code_lists": {"unit": ["PC_GDP", "NR"]}}
    ctx.update(extra)
    return ctx


def _set(col: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[row, col] = value
        return f

    return mutate


def _object_value(f: pd.DataFrame) -> pd.DataFrame:
    f["value"] = pd.Series([*f["value"].tolist()[:-1], "1,5"], dtype=object)
    return f


def _duplicate(f: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([f, f.iloc[[0]]], ignore_index=True)


# rule id -> (mutation, sample value expected in the summary, extra context)
CRITICAL_CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str, dict]] = {
    "columns_present": (
        lambda f: f.drop(columns=["source_updated_at"]),
        "missing column source_updated_at",
        {},
    ),
    "dataset_matches_batch": (_set("dataset", 2, "nama_10r_3gdp"), "nama_10r_3gdp", {}),
    "key_not_null": (_set("unit", 0, None), "null at freq=A", {}),
    "dimension_code_well_formed": (_set("unit", 4, "N R"), "N R", {"code_lists": {}}),
    "dimension_code_in_code_list": (_set("unit", 4, "EUR_HAB"), "EUR_HAB", {}),
    "geo_code_valid": (_set("geo", 1, "GR30"), "GR30", {}),
    "value_numeric": (_object_value, "1,5", {}),
    "null_value_has_status": (_set("value", 0, np.nan), "null at freq=A, unit=PC_GDP, geo=ES51", {}),
    "obs_status_vocabulary": (_set("obs_status", 2, "c"), "c", {}),
    "conf_status_vocabulary": (_set("conf_status", 3, "X"), "X", {}),
    "time_parses_for_frequency": (_set("time", 6, "2021M12"), "2021M12", {}),
    "key_unique": (_duplicate, "geo=ES51", {"obs_count": 11}),
    "row_count_matches_obs_count": (lambda f: f, "observed 10 (expected 12)", {"obs_count": 12}),
}


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Validator:
    return Validator(docs_dir=tmp_path_factory.mktemp("gx-docs"))


def run(validator: Validator, frame: pd.DataFrame, batch_id: str, **extra: object) -> Verdict:
    return validator.validate(SUITE, batch_id, frame, context=context(good_frame(), **extra))


def test_ingest_validation_import_is_light() -> None:
    import subprocess

    code = "import ingest.validation, sys; print('great_expectations' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"


def test_every_critical_rule_has_a_case() -> None:
    rules = {e["id"] for e in load_suite(SUITE)["expectations"] if e["meta"]["severity"] == "critical"}
    assert rules == set(CRITICAL_CASES)


def test_good_batch_passes(validator: Validator) -> None:
    verdict = run(validator, good_frame(), "good")
    assert verdict.success, verdict.summary()
    assert not verdict.failed, verdict.summary()
    assert verdict.summary().startswith("PASSED")
    # time formats were checked per frequency, code lists applied where given
    conditions = {r.details.get("condition") for r in verdict.results if r.expectation == "time_parses_for_frequency"}
    assert "freq in (Q)" in conditions and "freq in (D)" in conditions
    assert any(r.expectation == "dimension_code_in_code_list" and r.column == "unit" for r in verdict.results)


@pytest.mark.parametrize("rule", sorted(CRITICAL_CASES))
def test_bad_batch_fails_exactly_one_critical_rule(validator: Validator, rule: str) -> None:
    mutate, sample, extra = CRITICAL_CASES[rule]
    verdict = run(validator, mutate(good_frame()), f"bad-{rule}", **extra)
    assert verdict.success is False
    assert {r.expectation for r in verdict.failed_critical} == {rule}, verdict.summary()
    summary = verdict.summary()
    line = next(x for x in summary.splitlines() if f"[critical] {rule}" in x)
    assert sample in line, summary
    failed = verdict.failed_critical[0]
    if failed.unexpected_count is not None:
        assert failed.unexpected_count >= 1 and f"{failed.unexpected_count} unexpected of" in line
    assert 1 <= len(failed.sample_values) <= 5
    problems = verdict.problems()
    assert problems and all(f"batch bad-{rule} ({DATASET})" in p and "expected" in p for p in problems)


def test_warnings_do_not_fail_the_batch(validator: Validator) -> None:
    frame = good_frame()
    frame.loc[0, "value"] = 150.0  # PC_GDP above 100
    frame.loc[5, "value"] = -3.0  # a count below 0
    verdict = run(validator, frame, "warn", positions_with_no_data={"geo": ["HU32"]})
    assert verdict.success is True, verdict.summary()
    assert {r.expectation for r in verdict.failed_warning} == {
        "percentage_in_0_100",
        "count_not_negative",
        "no_rows_at_positions_without_data",
    }
    assert "[warning] percentage_in_0_100 column value where unit in (PC_GDP)" in verdict.summary()
    assert "150.0" in verdict.summary() and "-3.0" in verdict.summary()
    assert verdict.problems() == [] and len(verdict.problems(include_warnings=True)) == 3


def test_dimensions_follow_the_frame(validator: Validator) -> None:
    frame = good_frame().drop(columns=["freq"])
    frame.insert(2, "nace_r2", s(["C32"] * len(frame)))
    frame["time"] = s(
        ["2020", "2020-Q1", "2020-01", "2020-S1", "2020-W01", "2020-01-01", "2021", "2022", "2023", "2024"]
    )
    verdict = run(validator, frame, "no-freq")
    assert verdict.success, verdict.summary()
    key = next(r for r in verdict.results if r.expectation == "key_unique")
    assert key.column == "unit,nace_r2,geo,time"
    frame.loc[0, "time"] = "20X0"
    verdict = run(validator, frame, "no-freq-bad")
    assert {r.expectation for r in verdict.failed_critical} == {"time_parses_for_frequency"}


def test_data_docs(validator: Validator) -> None:
    run(validator, good_frame(), "docs")
    index = validator.build_docs()
    assert index is not None and index.name == "index.html" and index.is_file()
    assert "eurostat_observations" in index.read_text(encoding="utf-8")
    assert list((index.parent / "validations" / SUITE).rglob("*.html"))


def test_a_clean_batch_is_validated_once_and_any_unexpected_value_brings_the_samples(validator, monkeypatch) -> None:
    """GX first counts only; a batch with an unexpected value is validated again with samples, so every verdict
    equals the one a single validation with samples gives (the clean batch too)."""
    from great_expectations.datasource.fluent.interfaces import Batch

    import ingest.validation._gx as gx_engine

    formats: list[str] = []
    validate = Batch.validate

    def counting(self, expect, *args, result_format=None, **kwargs):
        formats.append(result_format["result_format"])
        return validate(self, expect, *args, result_format=result_format, **kwargs)

    monkeypatch.setattr(Batch, "validate", counting)
    warned = good_frame()
    warned.loc[0, "value"] = 150.0  # a warning: the batch passes, with a sample to show
    verdicts = [run(validator, good_frame(), "once"), run(validator, warned, "twice")]
    assert formats == ["BASIC", "BASIC", "SUMMARY"]

    def comparable(verdict: Verdict) -> list:
        return [(r.expectation, r.column, r.success, r.unexpected_count, r.sample_values) for r in verdict.results]

    monkeypatch.setattr(gx_engine, "COUNTS_ONLY", gx_engine.RESULT_FORMAT)  # one validation with samples
    assert [comparable(v) for v in verdicts] == [
        comparable(run(validator, good_frame(), "summary")),
        comparable(run(validator, warned, "summary-warned")),
    ]
    assert ["150.0"] in [r.sample_values for r in verdicts[1].failed_warning]
