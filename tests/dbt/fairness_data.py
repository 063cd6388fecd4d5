"""A generated 20-cluster SME survey for the matchmaking fairness test (issue #20, item 3), and the ranking rule
of ``mart_matchmaking`` recomputed in plain Python from its candidate pool.

``generate()`` is seeded and deterministic: 20 clusters of different sizes, each member offering and needing a few
service / technology codes and ticking a few cross-sector interests, every code drawn from the code lists of the
dbt seed ``survey_codes.csv``. Each cluster leans towards a few "specialty" codes and interests of its own, and the
specialties overlap between clusters. The rows have the columns of the raw survey tables
(``ingest/migrations/0002_surveys.sql``); respondents are 32-hex-digit pseudonyms like the pipeline's.

``pick_candidates()`` ranks the offers of one need as the mart does (best score first, i.e. most shared interests;
the need's priority is the same for every offer), with the tie-break passed in: ``pair_hash_order`` is the mart's
rule (md5 of needing member || '|' || offering member), ``cluster_id_order`` the rule it replaced (cluster id, then
member), which lets the test show what the old rule would have done to the same candidate pool.
``fair_lottery()`` is the yardstick for a tie-break: the expected candidates per cluster if every tie at the cut were
settled by a uniformly random draw (exact expectation, no sampling), i.e. what the scores alone entitle each cluster
to.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SEED = 20_2003  # issue 20, item 3
WAVE = 2025
SURVEY_CODES = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "survey_codes.csv"

# 20 cluster ids; their alphabetical order is unrelated to their sizes (drawn below).
CLUSTER_IDS = (
    "adriatic_watersports",
    "alpine_outdoor",
    "baltic_wellbeing",
    "basque_sport",
    "bavaria_bike",
    "carpathian_trail",
    "danube_active",
    "flanders_fit",
    "iberian_padel",
    "irish_field_sports",
    "lombardy_cycling",
    "moravia_sporttech",
    "nordic_snow",
    "occitanie_rugby",
    "polish_fitness",
    "portugal_surf",
    "rhine_sportsdata",
    "saxony_sportlab",
    "scandi_esports",
    "tyrol_mountain",
)


def code_lists(path: Path = SURVEY_CODES) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["code_list"]].append(row["code"])
    return dict(out)


def pseudonym(cluster_id: str, member: int) -> str:
    """A stable 32-hex-digit pseudonym, shaped like ingest.surveys.privacy.pseudonymise (test-only key)."""
    return hmac.new(b"fairness-test-key", f"{cluster_id}/{member}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass
class Survey:
    """Raw rows per table (tuples in the column order of ``COLUMNS``) and one audit batch per cluster file."""

    batches: list[tuple]
    offers_needs: list[tuple]
    interests: list[tuple]
    ratings: list[tuple]
    sizes: dict[str, int]


COLUMNS = {
    "audit.batches": ("batch_id", "source", "object", "sha256", "status", "created_at", "updated_at"),
    "raw.survey_sme_offers_needs": (
        "batch_id",
        "file_sha256",
        "cluster",
        "wave",
        "respondent_pid",
        "direction",
        "code",
    ),
    "raw.survey_sme_interests": ("batch_id", "file_sha256", "cluster", "wave", "respondent_pid", "sector"),
    "raw.survey_sme_service_ratings": (
        "batch_id",
        "file_sha256",
        "cluster",
        "wave",
        "respondent_pid",
        "service",
        "used_12m",
        "importance",
        "satisfaction",
        "impact",
        "priority_top3",
    ),
}


def _weighted_sample(rng: random.Random, items: list[str], weights: dict[str, float], k: int) -> list[str]:
    """k distinct items, each draw proportional to its weight among those left."""
    left = list(items)
    out = []
    for _ in range(min(k, len(left))):
        pick = rng.choices(left, [weights[i] for i in left])[0]
        left.remove(pick)
        out.append(pick)
    return out


def generate(seed: int = SEED) -> Survey:
    rng = random.Random(seed)
    lists = code_lists()
    services, technologies, sectors = lists["services"], lists["technologies"], lists["cross_sector"]
    topics = services + technologies
    survey = Survey([], [], [], [], {})
    for n, cluster_id in enumerate(CLUSTER_IDS):
        size = rng.randint(6, 60)
        survey.sizes[cluster_id] = size
        sha = hashlib.sha256(f"fairness|{seed}|{cluster_id}".encode()).hexdigest()
        batch_id = f"fair_{cluster_id}_{WAVE}"
        created = f"{WAVE}-10-{1 + n:02d}"
        survey.batches.append(
            (batch_id, "surveys", f"{cluster_id}/sme_needs/results.xlsx", [sha], "loaded", created, created)
        )
        # The cluster's leaning: 4 specialty codes offered 3x as often, 4 (other) codes needed 3x as often, and
        # its own likelihood of each cross-sector interest. Specialties overlap between clusters (random draws).
        offer_weight = dict.fromkeys(topics, 1.0) | dict.fromkeys(rng.sample(topics, 4), 3.0)
        need_weight = dict.fromkeys(topics, 1.0) | dict.fromkeys(rng.sample(topics, 4), 3.0)
        interest_p = {s: rng.uniform(0.1, 0.6) for s in sectors}
        for member in range(1, size + 1):
            pid = pseudonym(cluster_id, member)
            key = (batch_id, sha, cluster_id, WAVE, pid)
            offers = _weighted_sample(rng, topics, offer_weight, rng.choice([0, 1, 1, 2, 2, 3]))
            needs = _weighted_sample(rng, topics, need_weight, rng.choice([1, 1, 2, 2, 3]))
            for code in offers:
                survey.offers_needs.append((*key, "offer", code))
            for code in needs:
                survey.offers_needs.append((*key, "need", code))
            for sector in sectors:
                if rng.random() < interest_p[sector]:
                    survey.interests.append((*key, sector))
            # Ratings: every needed service and a few others; up to three of them flagged top-3 priority.
            rated = sorted({c for c in needs if c in services} | set(rng.sample(services, rng.randint(1, 4))))
            top3 = set(rng.sample(rated, min(len(rated), rng.randint(1, 3))))
            for service in rated:
                used = rng.random() < 0.6
                survey.ratings.append(
                    (
                        *key,
                        service,
                        used,
                        rng.choices([1, 2, 3, 4, 5], [3, 7, 20, 40, 30])[0],
                        rng.randint(1, 5) if used else None,
                        rng.randint(1, 5) if used else None,
                        service in top3,
                    )
                )
    return survey


# --- the ranking rule of mart_matchmaking, in Python ---------------------------------------------------------


@dataclass(frozen=True)
class Member:
    cluster_id: str
    respondent_pid: str
    topic_code: str
    interests: frozenset[str]


def pair_hash_order(need: Member, offer: Member, shared: int) -> tuple:
    pair = hashlib.md5(f"{need.respondent_pid}|{offer.respondent_pid}".encode()).hexdigest()  # noqa: S324
    return (-shared, pair, offer.respondent_pid)


def cluster_id_order(need: Member, offer: Member, shared: int) -> tuple:
    return (-shared, offer.cluster_id, offer.respondent_pid)


def pick_candidates(needs: list[Member], offers: list[Member], per_need: int, order) -> list[tuple[Member, Member]]:
    """For each need, the best ``per_need`` offers of its code by members of other clusters, ranked by ``order``."""
    by_code: dict[str, list[Member]] = defaultdict(list)
    for offer in offers:
        by_code[offer.topic_code].append(offer)
    out = []
    for need in needs:
        pool = [o for o in by_code[need.topic_code] if o.cluster_id != need.cluster_id]
        ranked = sorted(pool, key=lambda o, need=need: order(need, o, len(o.interests & need.interests)))
        out.extend((need, o) for o in ranked[:per_need])
    return out


def tie_at_cut(needs: list[Member], offers: list[Member], per_need: int) -> tuple[int, int]:
    """(needs whose cut falls inside a group of equally scored offers, needs with more offers than places):
    for those needs the tie-break, not the score, decides who is proposed."""
    by_code: dict[str, list[Member]] = defaultdict(list)
    for offer in offers:
        by_code[offer.topic_code].append(offer)
    tied = contested = 0
    for need in needs:
        scores = sorted(
            (len(o.interests & need.interests) for o in by_code[need.topic_code] if o.cluster_id != need.cluster_id),
            reverse=True,
        )
        if len(scores) > per_need:
            contested += 1
            tied += scores[per_need - 1] == scores[per_need]
    return tied, contested


def fair_lottery(needs: list[Member], offers: list[Member], per_need: int) -> dict[str, float]:
    """Expected candidate rows per offering cluster when, for each need, the offers scoring above the cut are taken
    and the places left are drawn uniformly at random among the offers scoring exactly at the cut."""
    by_code: dict[str, list[Member]] = defaultdict(list)
    for offer in offers:
        by_code[offer.topic_code].append(offer)
    expected: dict[str, float] = defaultdict(float)
    for need in needs:
        pool = sorted(
            (
                (len(o.interests & need.interests), o)
                for o in by_code[need.topic_code]
                if o.cluster_id != need.cluster_id
            ),
            key=lambda scored: -scored[0],
        )
        if not pool:
            continue
        cut = pool[min(per_need, len(pool)) - 1][0]
        above = [o for score, o in pool if score > cut]
        at_cut = [o for score, o in pool if score == cut]
        for offer in above:
            expected[offer.cluster_id] += 1
        for offer in at_cut:
            expected[offer.cluster_id] += (min(per_need, len(pool)) - len(above)) / len(at_cut)
    return dict(expected)
