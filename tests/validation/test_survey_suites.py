"""Survey suites: generated from the contract, one bad batch per critical rule for every raw table."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from ingest.config import EXPECTATIONS_DIR
from ingest.validation import Validator
from ingest.validation.suites import load_suite, named_code_list
from tools.survey_suites import EMAIL_REGEX, PHONE_REGEX, generate, render

SUITES = sorted(generate())
CLUSTER = "sports_technology"
CONTEXT = {"cluster": CLUSTER}


def _value(kinds: dict[str, dict], col: str, i: int) -> object:
    if "likert" in kinds:
        return 3
    if "code" in kinds:
        vs = kinds["code"]["kwargs"]["value_set"]
        codes = named_code_list(vs.split(":", 1)[1], CONTEXT) if isinstance(vs, str) else vs
        return CLUSTER if col == "cluster" else codes[i % len(codes)]
    if "range" in kinds:
        lo = kinds["range"]["kwargs"]["min_value"]
        return (lo or 0) + i
    return f"{col}-{i}"


def good_frame(suite: str, n: int = 3) -> pd.DataFrame:
    """A valid batch for a survey suite, built from the suite's own expectations."""
    spec = load_suite(suite)
    by_col: dict[str, dict[str, dict]] = {}
    for e in spec["expectations"]:
        col = e["kwargs"].get("column")
        if not isinstance(col, str) or col.startswith("$"):
            continue
        kind = {
            "likert_1_to_5": "likert",
            "code_in_list": "code",
            "within_contract_range": "range",
            "column_typed": "typed",
        }.get(e["id"])
        if kind:
            by_col.setdefault(col, {})[kind] = e
    columns = next(e for e in spec["expectations"] if e["id"] == "columns_present")["kwargs"]["column_set"]
    data: dict[str, object] = {}
    for col in columns:
        kinds = by_col.get(col, {})
        types = (kinds.get("typed") or {}).get("kwargs", {}).get("type_list", [])
        if col == "wave":
            values: list = [2024 + i for i in range(n)]
        else:
            values = [_value(kinds, col, i) for i in range(n)]
        if types and "float32" in types:
            data[col] = pd.array([float(v) if not isinstance(v, str) else 1.5 for v in values], dtype="float64")
        elif "likert" in kinds or (types and types[0] == "int64"):
            data[col] = pd.array(values, dtype="Int64")
        elif types and types[0] == "bool":
            data[col] = pd.array([True, False, True][:n], dtype="boolean")
        elif not types:
            data[col] = pd.array([False] * n, dtype="boolean")
        else:
            data[col] = pd.array([str(v) for v in values], dtype="str")
    return pd.DataFrame(data)


def _first(suite: str, rule: str) -> str:
    return next(e["kwargs"]["column"] for e in load_suite(suite)["expectations"] if e["id"] == rule)


def _set(col: str, value: object) -> Callable[[pd.DataFrame, str], pd.DataFrame]:
    def mutate(f: pd.DataFrame, suite: str) -> pd.DataFrame:
        f.loc[1, col] = value
        return f

    return mutate


def _not_a_string(f: pd.DataFrame, suite: str) -> pd.DataFrame:
    f["file_sha256"] = pd.Series(["abc", 12345, "def"], dtype=object)
    return f


def _likert_zero(f: pd.DataFrame, suite: str) -> pd.DataFrame:
    f.loc[1, _first(suite, "likert_1_to_5")] = 0
    return f


# rule -> mutation; every mutation touches columns that no other rule of the suite would flag
MUTATIONS: dict[str, Callable[[pd.DataFrame, str], pd.DataFrame]] = {
    "columns_present": lambda f, suite: f.drop(columns=["file_sha256"]),
    "column_typed": _not_a_string,
    "required_not_null": _set("file_sha256", None),
    "likert_1_to_5": _likert_zero,
    "code_in_list": _set("cluster", "atlantis"),
    "within_contract_range": _set("wave", 1999),
    "one_response_per_key": lambda f, suite: pd.concat([f, f.iloc[[0]]], ignore_index=True),
    "no_email": _set("file_sha256", "write to jan.jansen@example.org please"),
    "no_phone": _set("file_sha256", "call +31 6 1234 5678"),
}
CASES = [
    (suite, rule)
    for suite in SUITES
    for rule in sorted({e["id"] for e in load_suite(suite)["expectations"] if e["meta"]["severity"] == "critical"})
]


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Validator:
    return Validator(docs_dir=tmp_path_factory.mktemp("gx-docs"))


@pytest.mark.parametrize("suite", SUITES)
def test_committed_suite_matches_the_contract(suite: str) -> None:
    path = EXPECTATIONS_DIR / f"{suite}.json"
    assert path.is_file(), "run: python -m tools.survey_suites"
    assert path.read_text(encoding="utf-8") == render(generate()[suite]), (
        f"{path.name} is out of date with the contract: run python -m tools.survey_suites"
    )


def test_pii_patterns_flag_nothing_the_privacy_module_would_leave() -> None:
    """The GX leftovers check (plain regexes) is narrower than the parser's scrubber (regexes plus an amount
    rule): whatever GX would flag, the scrubber has already replaced, so a parsed file never fails it."""
    import re

    privacy = pytest.importorskip("ingest.surveys.privacy")
    samples = [
        "jan@example.com",
        "j.jansen+x@mail.example.nl",
        "+31 6 1234 5678",
        "0034 93 123 45 67",
        "06-12345678",
        "+1 (555) 123-4567",
        "612 345 678",
        "jan(at)example.com",
        "jan@localhost",
        "turnover 5 M EUR in 2024",
        "30 % export",
        "612 345 678 EUR",
    ]
    for text in samples:
        scrubbed = privacy.scrub(text)
        assert not re.search(EMAIL_REGEX, scrubbed), text
        assert not re.search(PHONE_REGEX, scrubbed), text


def test_required_suites_exist() -> None:
    assert {"survey_sme_respondents", "survey_sme_service_ratings"} <= set(SUITES)
    rules = {e["id"] for e in load_suite("survey_sme_respondents")["expectations"]}
    assert {"one_response_per_key", "no_email", "no_phone", "code_in_list", "likert_1_to_5"} <= rules


@pytest.mark.parametrize("suite", SUITES)
def test_good_batch_passes(validator: Validator, suite: str) -> None:
    verdict = validator.validate(suite, f"good-{suite}", good_frame(suite), context=CONTEXT)
    assert verdict.success and not verdict.failed, verdict.summary()
    assert not [s for s in verdict.skipped if "absent" in s], verdict.skipped


@pytest.mark.parametrize(("suite", "rule"), CASES)
def test_bad_batch_fails_exactly_one_critical_rule(validator: Validator, suite: str, rule: str) -> None:
    frame = MUTATIONS[rule](good_frame(suite), suite)
    verdict = validator.validate(suite, f"bad-{suite}-{rule}", frame, context=CONTEXT)
    assert verdict.success is False
    assert {r.expectation for r in verdict.failed_critical} == {rule}, verdict.summary()
    summary = verdict.summary()
    assert f"[critical] {rule}" in summary
    failed = verdict.failed_critical[0]
    assert 1 <= len(failed.sample_values) <= 5, summary
    if failed.unexpected_count is not None:
        assert failed.unexpected_count >= 1 and f"{failed.unexpected_count} unexpected of" in summary
    if rule in ("no_email", "no_phone"):  # personal data never echoed
        assert "example.org" not in summary and "1234 5678" not in summary
        assert "[redacted]" in failed.sample_values[0]
    assert verdict.problems()


def test_likert_allows_missing_but_not_zero(validator: Validator) -> None:
    suite = "survey_sme_service_ratings"
    frame = good_frame(suite)
    frame.loc[0, "importance"] = pd.NA
    assert validator.validate(suite, "ratings-missing", frame, context=CONTEXT).success
    frame.loc[1, "satisfaction"] = 6
    verdict = validator.validate(suite, "ratings-six", frame, context=CONTEXT)
    assert not verdict.success and verdict.failed_critical[0].column == "satisfaction"
    assert verdict.failed_critical[0].sample_values == ["6"]
