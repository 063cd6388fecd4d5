"""Fair matchmaking on a generated 20-cluster set (issue #20, item 3; the bundled-data half is
tests/pipeline/test_nightly.py::test_matchmaking_candidates_follow_the_offers_not_the_alphabet).

A fresh, migrated database on the test server receives the generated survey rows of ``fairness_data.generate()``
(20 clusters of 6-60 members; raw SME offers/needs, interests and ratings, one audit batch per cluster file). The
real dbt project then builds what ``mart_matchmaking`` needs and nothing else (``build --select +mart_matchmaking``:
the seed survey_codes, the three survey staging views, int_sme_offers_needs_profiled, the mart, and their data
tests), as the pipeline runs it: dbtRunner, the profile's environment variables, acting as ``transformer``.
The clusters table (reference.clusters, from the catalogue) is not in the mart's chain, so the partnership tables
need no generated rows; the relationships tests from the staging models to ``ref('clusters')`` are left out by
``--indirect-selection cautious`` (they would read a model this build does not build; with the bundled partnership
they would only warn about the generated ids anyway).

"Eligible offers" are defined exactly as in the bundled check: a cluster's rows of
intermediate.int_sme_offers_needs_profiled with direction = 'offer', over all clusters' such rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import create_database, drop_database, query
from tests.dbt.fairness_data import (
    COLUMNS,
    Member,
    cluster_id_order,
    fair_lottery,
    generate,
    pair_hash_order,
    pick_candidates,
    tie_at_cut,
)
from tests.dbt.test_dbt_build import dbt_env
from tests.pipeline.test_nightly import MATCHMAKING_SHARES_SQL

psycopg2 = pytest.importorskip("psycopg2")
dbt_main = pytest.importorskip("dbt.cli.main")
from psycopg2.extras import execute_values  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
BOUND = 4 / 3  # a cluster's share of candidates may exceed its share of eligible offers by at most a third
N_CLUSTERS = 20

pytestmark = pytest.mark.timeout(600)


def _per_need() -> int:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return int(project["vars"]["matchmaking_offers_per_need"])


def _insert(url: str, survey) -> None:
    tables = {
        "audit.batches": survey.batches,
        "raw.survey_sme_offers_needs": survey.offers_needs,
        "raw.survey_sme_interests": survey.interests,
        "raw.survey_sme_service_ratings": survey.ratings,
    }
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            for table, rows in tables.items():
                execute_values(
                    cur,
                    f"insert into {table} ({', '.join(COLUMNS[table])}) values %s",  # noqa: S608
                    rows,
                    page_size=1000,
                )
    finally:
        conn.close()


def _dbt_build(url: str, target_path: Path) -> None:
    cli = [
        "build",
        "--select",
        "+mart_matchmaking",
        "--indirect-selection",
        "cautious",
        "--exclude-resource-type",
        "unit_test",  # the mart's unit tests do not read this data
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path / "logs"),
    ]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in dbt_env(url).items():
            mp.setenv(key, value)
        result = dbt_main.dbtRunner().invoke(cli)
    failures = []
    if result.result is not None and hasattr(result.result, "results"):
        failures = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in result.result.results
            if str(r.status) in ("error", "fail", "runtime error")
        ]
    assert result.success, f"dbt {' '.join(cli[:5])} failed: {result.exception or failures}"


@pytest.fixture(scope="module")
def generated(warehouse_url, tmp_path_factory):
    survey = generate()
    url = create_database(warehouse_url)
    try:
        _insert(url, survey)
        _dbt_build(url, tmp_path_factory.mktemp("dbt_fairness"))
        pool = query(
            url,
            "select cluster_id, respondent_pid, direction, topic_code, cross_sectors"
            " from intermediate.int_sme_offers_needs_profiled",
        )
        members = {"offer": [], "need": []}
        for cluster_id, pid, direction, code, sectors in pool:
            members[direction].append(Member(cluster_id, pid, code, frozenset(filter(None, sectors.split(",")))))
        mart = query(
            url,
            "select need_cluster_id, need_respondent_pid, topic_code, offer_cluster_id,"
            " offer_respondent_pid, match_rank, match_score from marts.mart_matchmaking",
        )
        shares = {cluster: (candidate, offer) for cluster, candidate, offer in query(url, MATCHMAKING_SHARES_SQL)}
        yield {
            "survey": survey,
            "offers": members["offer"],
            "needs": members["need"],
            "mart": mart,
            "shares": shares,
            "per_need": _per_need(),
        }
    finally:
        drop_database(warehouse_url, url)


def _candidate_shares(pairs) -> dict[str, float]:
    counts = Counter(offer.cluster_id for _, offer in pairs)
    return {cluster: n / len(pairs) for cluster, n in counts.items()}


def _lottery_shares(g) -> dict[str, float]:
    expected = fair_lottery(g["needs"], g["offers"], g["per_need"])
    total = sum(expected.values())
    return {cluster: n / total for cluster, n in expected.items()}


def _table(rows: list[tuple[str, float, float]], lottery: dict[str, float], label: str) -> str:
    """One line per cluster: offers share, candidate share, ratio; '<-- over' where the bound is broken."""
    lines = [f"{'cluster':24}{'offers':>9}{label:>12}{'ratio':>8}{'fair lottery':>14}"]
    for cluster, candidate, offer in sorted(rows, key=lambda r: -(r[1] / r[2])):
        over = "  <-- over 4/3" if candidate > offer * BOUND else ""
        lines.append(
            f"{cluster:24}{offer:9.2%}{candidate:12.2%}{candidate / offer:8.2f}{lottery.get(cluster, 0.0):14.2%}{over}"
        )
    return "\n".join(lines)


def test_generated_set_is_loaded_whole(generated):
    """Every generated cluster, offer and need reaches the mart's candidate pool (nothing filtered away)."""
    survey = generated["survey"]
    assert len({o.cluster_id for o in generated["offers"]}) == N_CLUSTERS
    assert len(set(survey.sizes.values())) > 10, survey.sizes  # varied sizes
    assert len(generated["offers"]) == sum(r[5] == "offer" for r in survey.offers_needs)
    assert len(generated["needs"]) == sum(r[5] == "need" for r in survey.offers_needs)
    assert {o.topic_code for o in generated["offers"]} & {n.topic_code for n in generated["needs"]}


def test_generated_set_has_many_score_ties(generated):
    """Ties are the rule: for most needs more offers qualify than there are places, and the cut falls inside a
    group of equally scored offers, so the tie-break (not the score) decides who is proposed."""
    tied, contested = tie_at_cut(generated["needs"], generated["offers"], generated["per_need"])
    n_needs = len(generated["needs"])
    assert contested >= n_needs / 2, (contested, n_needs)
    assert tied >= 0.8 * contested, f"only {tied} of {contested} contested needs have a tie at the cut"
    tied_rows = Counter((r[0], r[1], r[2], r[6]) for r in generated["mart"])
    assert sum(n for n in tied_rows.values() if n > 1) >= len(generated["mart"]) / 2  # equal scores in the mart


def test_python_ranking_reproduces_the_mart(generated):
    """The Python rule (score, then md5 of the pair) picks exactly the mart's candidates with the mart's ranks, so
    the counterfactual rule below is applied to the very same candidate pool."""
    picked = pick_candidates(generated["needs"], generated["offers"], generated["per_need"], pair_hash_order)
    ranks = Counter()
    python_rows = set()
    for need, offer in picked:
        ranks[need] += 1
        python_rows.add(
            (need.cluster_id, need.respondent_pid, need.topic_code, offer.cluster_id, offer.respondent_pid, ranks[need])
        )
    mart_rows = {tuple(r[:6]) for r in generated["mart"]}
    assert len(mart_rows) == len(generated["mart"])
    assert python_rows == mart_rows, (
        f"{len(python_rows - mart_rows)} rows only in Python, {len(mart_rows - python_rows)} only in the mart"
    )


def test_on_equal_scores_no_cluster_exceeds_its_share_of_eligible_offers_by_a_third(generated):
    """The issue's bound (as on the bundled data) for what the tie-break decides: with every offer of a code scored
    alike, the mart's tie-break (md5 of the pair) gives no cluster more than 4/3 of its share of eligible offers.

    On the generated set as scored, five clusters exceed that bound (up to 1.62) by their scores, not by the
    tie-break: their members share more interests with the needs (0.25 a shared interest), and a fair lottery of
    every tie at the cut gives them the same excess (next test). The bound against the offer share holds only
    where clusters do not differ in score; the bound against the fair-lottery share holds always."""
    equal_scores = _candidate_shares(
        pick_candidates(
            generated["needs"],
            generated["offers"],
            generated["per_need"],
            lambda need, offer, _shared: pair_hash_order(need, offer, 0),
        )
    )
    offers_share = {c: offer for c, (_, offer) in generated["shares"].items()}
    assert len(offers_share) == N_CLUSTERS
    rows = [(c, equal_scores.get(c, 0.0), offers_share[c]) for c in offers_share]
    over = [c for c, candidate, offer in rows if candidate > offer * BOUND]
    assert not over, "equal scores, ties by pair hash:\n" + _table(rows, _lottery_shares(generated), "candidates")


def test_no_cluster_exceeds_its_fair_lottery_share_by_a_third(generated):
    """What the tie-break alone is answerable for: every cluster's share of candidates is at most 4/3 of the share
    the scores entitle it to (ties at the cut settled by a uniformly random draw, exact expectation)."""
    lottery = _lottery_shares(generated)
    candidates = _candidate_shares(
        pick_candidates(generated["needs"], generated["offers"], generated["per_need"], pair_hash_order)
    )
    over = {c: (candidates.get(c, 0.0), lottery[c]) for c in lottery if candidates.get(c, 0.0) > lottery[c] * BOUND}
    rows = [(c, candidates.get(c, 0.0), lottery[c]) for c in lottery]
    assert not over, "candidate share vs fair-lottery share (mart rule):\n" + _table(rows, lottery, "candidates")


def test_ties_broken_by_cluster_id_would_break_both_bounds(generated):
    """The same checks on the same candidate pool with the rule the mart replaced (ties by cluster id, then
    member): the alphabetically first clusters take the places, far beyond either bound."""
    per_need = generated["per_need"]
    offers_share = {c: offer for c, (_, offer) in generated["shares"].items()}
    lottery = _lottery_shares(generated)
    by_cluster_id = _candidate_shares(
        pick_candidates(generated["needs"], generated["offers"], per_need, cluster_id_order)
    )
    rows = [(c, by_cluster_id.get(c, 0.0), offers_share[c]) for c in offers_share]
    over_offers = [c for c, candidate, offer in rows if candidate > offer * BOUND]
    over_lottery = [c for c in lottery if by_cluster_id.get(c, 0.0) > lottery[c] * BOUND]
    table = _table(rows, lottery, "by id")
    assert over_offers, "ties by cluster id stay within 4/3 of the offer shares: the check cannot tell\n" + table
    assert over_lottery, "ties by cluster id stay within 4/3 of the fair-lottery shares\n" + table
    first = min(offers_share)
    assert by_cluster_id[first] > offers_share[first] * BOUND, table  # the alphabet's favourite
