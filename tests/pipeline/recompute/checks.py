"""A second implementation that agrees (issue #20): after a real bundled night (`ss4gl run`, offline: real Airflow
dag.test, Postgres, GX and dbt on the bundled samples), every published number of the marts is recomputed in plain
Python from raw.*, audit.batches and the seed CSV files, from the documented formulas (tests/pipeline/recompute),
and must be equal: exactly where a mart rounds (to its documented number of decimals, from the exact value), and to
Postgres' full numeric precision where a mart keeps it (see tests/pipeline/recompute/exact.py).

A difference is one line: mart [key] column: dbt value != recomputed value. mart_eurostat_revisions is not
recomputed (it needs a revision between two nights).

These tests run in tests/pipeline/test_nightly.py, on that module's bundled night (its fixture ``night``): one
whole-DAG run for both, where a module of their own ran the same night again (pytest-xdist's ``--dist loadfile``
cannot share a run between files)."""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal
from fractions import Fraction

import pytest

from tests.conftest import query
from tests.pipeline.recompute.compare import compare, published
from tests.pipeline.recompute.exact import FULL, SAME, Round, matches, round_half_away
from tests.pipeline.recompute.inputs import load
from tests.pipeline.recompute.marts import MARTS, matchmaking_members
from tests.pipeline.test_nightly import ss4gl
from tools.survey_samples import CORRECTION_SME_MEMBERS

# Non-null published values compared per mart on the bundled night must be at least these (about 90 % of the
# counts of the bundled samples: 272, 1 729, 13 654, 315 086, 31 871, 50), so an emptied mart, a lost column or
# a night that loaded nothing cannot pass.
MIN_VALUES = {
    "mart_cluster_kpis": 240,
    "mart_sme_needs": 1_550,
    "mart_partnership_indicators": 12_000,
    "mart_region_benchmarks": 280_000,
    "mart_matchmaking": 28_000,
    "mart_cluster_similarity": 45,
}
SHOWN = 200  # mismatch lines printed per mart


@pytest.fixture(scope="module")
def inputs(night):
    return load(night["url"])


def test_the_bundled_night_succeeds(night):
    res = night["result"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


@pytest.mark.parametrize("mart", list(MARTS))
def test_published_mart_equals_the_recomputation(mart, night, inputs):
    recompute, spec = MARTS[mart]
    compared, lines = compare(mart, spec, published(night["url"], mart, spec), recompute(inputs))
    shown = "\n".join(lines[:SHOWN]) + (f"\n… and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")
    assert not lines, f"{len(lines)} differences ({compared} published values compared):\n{shown}"
    assert compared >= MIN_VALUES[mart], f"only {compared} published values compared"


# The comparison rules themselves (no warehouse): the findings of issue #20 would be caught.


def test_a_share_rounded_inside_its_formula_does_not_match():
    exact = 100 * Fraction(63, 82)  # MEMBERS_SME_SHARE: 76.829268…
    assert matches(Decimal("76.829268"), exact, Round(6))
    assert not matches(Decimal("76.8293"), exact, Round(6))  # 100 x round(63 / 82, 6)


def test_full_precision_means_full_precision():
    assert matches(Decimal("0.66666666666666666667"), Fraction(2, 3), FULL)
    assert matches(Decimal("4.3333333333333333"), Fraction(13, 3), FULL)  # avg(): 16 decimals above 1
    assert not matches(Decimal("0.666667"), Fraction(2, 3), FULL)
    assert matches(Decimal("1.5"), Fraction(3, 2), FULL)
    assert not matches(Decimal("1.5000000000000001"), Fraction(3, 2), FULL)  # a terminating value is exact


def test_round_half_away_from_zero_like_postgres():
    assert round_half_away(Fraction(5, 2), 0) == 3 and round_half_away(Fraction(-5, 2), 0) == -3
    assert round_half_away(Fraction("0.0192450090"), 6) == Decimal("0.019245")
    assert matches(None, None, SAME) and not matches(None, 0, SAME) and not matches(False, None, SAME)


# The bundled samples exercise each rule (issue #20.6); each test shows the rule doing its job on the bundled night.


def test_bundled_partner_region_with_a_nuts_2024_only_code(night):
    """Sports & Technology's region NL36 (Zuid-Holland) exists in NUTS 2024 only; the regional samples also carry
    the NUTS 2021 code it replaced (NL33) for the years up to 2020. One NUTS version per indicator and country is
    kept (2024: its exclusive codes carry the latest data), so NL36 is benchmarked and counted in the cluster's
    figures, and NL33 is in neither (never counted twice)."""
    url = night["url"]
    legacy = query(url, "select count(*), max(time) from raw.eurostat_observations where geo = 'NL33'")[0]
    assert legacy[0] > 0 and legacy[1] <= "2020", legacy
    versions = dict(
        query(
            url,
            "select geo_code, string_agg(distinct nuts_version, ',')"
            " from marts.mart_region_benchmarks"
            " where geo_code in ('NL31', 'NL33', 'NL35', 'NL36') group by 1",
        )
    )
    assert versions == {"NL35": "2024", "NL36": "2024"}
    regions = dict(
        query(
            url,
            "select year, sum(value) from marts.mart_region_benchmarks where indicator_code = 'POP'"
            " and geo_code in ('NL34', 'NL36', 'NL41', 'NL42') group by year"
            " having count(*) = 4",
        )
    )
    cluster = dict(
        query(
            url,
            "select year, value from marts.mart_partnership_indicators"
            " where cluster_id = 'sports_technology' and indicator_code = 'POP'",
        )
    )
    assert cluster and cluster == {year: regions[year] for year in cluster}


def test_bundled_resubmitted_file_supersedes_the_original(night):
    """MSE's 2025 state of affairs arrives twice: the original and a corrected file with 4 more SME members. Both
    stay in raw (lineage); the file received last is current, so the marts show the corrected count."""
    url = night["url"]
    raw = query(
        url,
        "select b.object, p.members_sme from raw.survey_soa_profile p"
        " join audit.batches b using (batch_id) join audit.batch_receipts r using (batch_id)"
        " where p.cluster = 'mse_cluster' and p.wave = 2025"
        " order by r.receipt_id",
    )
    assert [name.rsplit("/", 1)[1] for name, _ in raw] == [
        "state_of_affairs_2025.xlsx",
        "state_of_affairs_2025_javitott.xlsx",
    ]
    (_, original), (_, corrected) = raw
    assert corrected == original + CORRECTION_SME_MEMBERS
    assert query(
        url, "select members_sme from marts.mart_cluster_kpis where cluster_id = 'mse_cluster' and year = 2025"
    ) == [(corrected,)]


def test_bundled_inconsistent_size_class_total_publishes_no_share(night):
    """Spain's 2023 enterprise total in the sample is 26 % above the sum of its size classes (all reported): no
    share is published for INDESCAT that year, the flag names the reason; consistent years are published."""
    rows = dict(
        (year, (value, flag))
        for year, value, flag in query(
            night["url"],
            "select year, value, quality_flag from marts.mart_partnership_indicators"
            " where cluster_id = 'indescat' and indicator_code = 'SME_ENT_SHARE'",
        )
    )
    assert rows[2023] == (None, "value:share_components_inconsistent")
    assert 99 < rows[2022][0] < 100 and rows[2022][1] is None


def test_bundled_matchmaking_ties_are_broken_by_the_pair_hash(inputs):
    """The bundled surveys tie at the cut for many needs (coarse scores), so the tie-break decides who is proposed:
    the mart (equal to this recomputation, test above) breaks ties by the hash of the pair; ordering the same ties
    by the offering cluster would propose other members for some needs."""
    per_need = int(inputs.vars["matchmaking_offers_per_need"])
    members = matchmaking_members(inputs)
    offers = [m for m in members if m["direction"] == "offer"]
    tied = differs = 0
    for need in (m for m in members if m["direction"] == "need"):
        scored = [
            (1 + Fraction(1, 4) * len(o["interests"] & need["interests"]), o)
            for o in offers
            if o["code"] == need["code"] and o["cluster"] != need["cluster"]
        ]
        if len(scored) <= per_need:
            continue
        scores = sorted((s for s, _ in scored), reverse=True)
        if scores[per_need - 1] != scores[per_need]:
            continue
        tied += 1
        by_hash = sorted(
            scored,
            key=lambda so: (
                -so[0],
                hashlib.md5(f"{need['respondent_pid']}|{so[1]['respondent_pid']}".encode()).hexdigest(),
            ),
        )  # noqa: S324 - the rule
        by_cluster = sorted(scored, key=lambda so: (-so[0], so[1]["cluster"], so[1]["respondent_pid"]))
        differs += {o["respondent_pid"] for _, o in by_hash[:per_need]} != {
            o["respondent_pid"] for _, o in by_cluster[:per_need]
        }
    assert tied >= 100 and differs >= tied // 2, (tied, differs)


def test_catalogue_check_warns_about_every_baseline_the_mart_flags(night):
    """`ss4gl catalogue check` reports, one line each, the strategy targets whose baseline disagrees with the data
    (the rule of mart_partnership_indicators.baseline_check): warnings (exit 0), or failures with --strict."""
    flagged = query(
        night["url"],
        "select distinct cluster_id, indicator_code, baseline_check"
        " from marts.mart_partnership_indicators where baseline_check is not null",
    )
    assert ("sports_technology", "GDP_EUR_HAB", "baseline_differs_from_observed") in flagged
    assert ("cluster_montagne", "EMP_R93_REG", "baseline_year_without_data") in flagged
    env = {**os.environ, "WAREHOUSE_URL": night["url"]}
    res = ss4gl(["catalogue", "check"], env)
    warnings = [line for line in res.stdout.splitlines() if line.startswith("warning: ")]
    assert res.returncode == 0 and len(warnings) == len(flagged), res.stdout + res.stderr
    for cluster, indicator, check in flagged:
        assert any(f"strategy target {cluster} {indicator}:" in w and w.endswith(f"({check})") for w in warnings)
    strict = ss4gl(["catalogue", "check", "--strict"], env)
    assert strict.returncode == 1 and "Traceback" not in strict.stdout + strict.stderr


# What tests/pipeline/test_nightly.py imports (its fixture `night` is the bundled night these run on).
__all__ = sorted(name for name in dir() if name.startswith("test_")) + ["inputs"]
