"""One function per mart: its published rows recomputed from the documentation, as {key: {column: value}}.

Each mart's ``Spec`` (``MARTS``) names its key columns and, per compared column, the comparison rule of its
documentation (``Round(n)``: rounded once to n decimals at the mart; ``FULL``: full numeric precision; ``SAME``:
equality), see ``tests.pipeline.recompute.exact``. Formulas are quoted from the models' headers / YAML next to the code
computing them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from tests.pipeline.recompute import eurostat, surveys
from tests.pipeline.recompute.exact import FULL, SAME, Round, div, mean, power, sqrt
from tests.pipeline.recompute.inputs import Inputs, load_vars
from tests.pipeline.recompute.surveys import group

R2, R4, R6 = Round(2), Round(4), Round(6)

# Where the documentation leaves a choice open, the recomputation follows what dbt does and says so here:
DOC_GAPS = {
    "mart_sme_needs.priority_top3_share": (
        "every respondent asked about the service counts, rated or not ('not used / don't know' leaves all three "
        "ratings empty, and such respondents may still tick the service as a top-3 priority); the YAML said "
        "'raters' until the recomputation found the two readings differ in 90 of the 91 bundled rows."
    ),
    "int_indicator_values_resolved (NUTS version)": (
        "'the version whose version-exclusive codes carry the most recent data': recomputed as the latest year "
        "with an observation row (a status-only cell counts). The bundled data have no NUTS 2024-only code."
    ),
}
FLAGS = ("is_provisional", "is_estimated", "is_confidential", "is_break")


@dataclass(frozen=True)
class Spec:
    key: tuple[str, ...]
    columns: dict[str, object]  # column -> comparison rule


def sql_rank(values: dict, descending: bool = True) -> dict:
    """{key: rank of its value} like SQL rank(): 1 = largest (smallest if not descending), ties share a rank and
    the next rank skips; a None value gets no rank."""
    ranked = [v for v in values.values() if v is not None]
    return {
        k: (1 + sum((o > v) if descending else (o < v) for o in ranked)) if v is not None else None
        for k, v in values.items()
    }


# --------------------------------------------------------------------------------------------- mart_cluster_kpis

CLUSTER_KPIS = Spec(
    key=("cluster_id", "year"),
    columns={
        "cluster_name": SAME,
        "members_total": SAME,
        **{t: SAME for t in surveys.MEMBER_TYPES},
        "sme_share_of_members": R6,
        "members_total_prev": SAME,
        "member_growth": R6,
        "member_retention": R6,
        "members_joined": SAME,
        "members_left": SAME,
        "member_employees": SAME,
        "member_turnover_eur": SAME,
        "innovation_turnover_eur": SAME,
        "staff_fte": SAME,
        "events": SAME,
        "b2b_meetings": SAME,
        "matchmaking_contacts": SAME,
        "joint_projects_submitted": SAME,
        "joint_projects_won": SAME,
        "project_success_rate": R6,
        "services_offered": SAME,
        "cross_sector_collaborations": SAME,
        "labels": SAME,
        "labels_count": SAME,
        "sme_survey_respondents": SAME,
        "sme_mean_digital_maturity": FULL,
        "sme_low_carbon_share_pct": FULL,
    },
)


def mart_cluster_kpis(inputs: Inputs) -> dict[tuple, dict]:
    """Layer-B KPIs per cluster x year (state of affairs, latest file per wave) with the SME survey outcomes of the
    same wave: sme_share_of_members = members_sme / members_total, member_growth = (total - total_prev) /
    total_prev, member_retention = 1 - members_left / total_prev, project_success_rate = won / submitted."""
    names = inputs.seed("clusters", "cluster_id")
    outcomes = surveys.sme_wave_outcomes(inputs)
    out = {}
    for (cluster, year), kpis in surveys.cluster_kpis(inputs).items():
        survey = outcomes.get((cluster, year), {})
        out[(cluster, year)] = {
            **kpis,
            "cluster_name": (names.get(cluster) or {}).get("cluster_name"),
            "sme_survey_respondents": survey.get("n_respondents"),
            "sme_mean_digital_maturity": survey.get("mean_digital_maturity"),
            "sme_low_carbon_share_pct": survey.get("low_carbon_share_pct"),
        }
    return out


# ------------------------------------------------------------------------------------------------ mart_sme_needs

SME_NEEDS = Spec(
    key=("cluster_id", "service_code", "wave"),
    columns={
        "service_label": SAME,
        "n_respondents": SAME,
        "n_importance": SAME,
        "n_satisfaction": SAME,
        "mean_importance": FULL,
        "mean_satisfaction": FULL,
        "gap": FULL,
        "mean_paired_gap": FULL,
        "mean_impact": FULL,
        "usage_share": FULL,
        "priority_top3_share": FULL,
        "rank_in_cluster": SAME,
        "partnership_gap": FULL,
        "partnership_rank": SAME,
        "cluster_wave_respondents": SAME,
        **{f"interest_share_{s}": FULL for s in load_vars()["cross_sectors"]},
    },
)


def mart_sme_needs(inputs: Inputs) -> dict[tuple, dict]:
    """Per cluster x service x wave: means of importance / satisfaction / impact over the respondents who answered
    (1-5, missing never 0), gap = mean_importance - mean_satisfaction, mean_paired_gap over respondents answering
    both, rank_in_cluster by gap (1 = largest), partnership_gap pooled over every cluster's respondents of the
    wave and its rank, and the cluster's cross-sector interest shares of the wave."""
    ratings = inputs.surveys["survey_sme_service_ratings"]
    labels = {c["code"]: c["label"] for c in inputs.seeds["survey_codes"] if c["code_list"] == "services"}
    outcomes = surveys.sme_wave_outcomes(inputs)
    pooled = {key: _gap(rows) for key, rows in group(ratings, "service", "wave").items()}
    partnership_rank = {}
    for wave in {w for _, w in pooled}:
        partnership_rank.update(sql_rank({k: g for k, g in pooled.items() if k[1] == wave}))
    out = {}
    for (cluster, service, wave), rows in group(ratings, "cluster", "service", "wave").items():
        answered_usage = [r["used_12m"] for r in rows if r["used_12m"] is not None]
        raters = {
            r["respondent_pid"] for r in rows if any(r[c] is not None for c in ("importance", "satisfaction", "impact"))
        }
        outcome = outcomes.get((cluster, wave), {})
        out[(cluster, service, wave)] = {
            "service_label": labels.get(service),
            "n_respondents": len(raters),
            "n_importance": sum(r["importance"] is not None for r in rows),
            "n_satisfaction": sum(r["satisfaction"] is not None for r in rows),
            "mean_importance": mean(r["importance"] for r in rows),
            "mean_satisfaction": mean(r["satisfaction"] for r in rows),
            "gap": _gap(rows),
            "mean_paired_gap": mean(
                r["importance"] - r["satisfaction"]
                for r in rows
                if r["importance"] is not None and r["satisfaction"] is not None
            ),
            "mean_impact": mean(r["impact"] for r in rows),
            "usage_share": div(sum(answered_usage), len(answered_usage)),
            # every respondent asked about the service counts, rated or not (see DOC_GAPS)
            "priority_top3_share": Fraction(sum(bool(r["priority_top3"]) for r in rows), len(rows)),
            "partnership_gap": pooled[(service, wave)],
            "partnership_rank": partnership_rank[(service, wave)],
            "cluster_wave_respondents": outcome.get("n_respondents"),
            **{f"interest_share_{s}": outcome.get(f"interest_share_{s}") for s in inputs.vars["cross_sectors"]},
        }
    for cluster, wave in {(c, w) for c, _, w in out}:
        ranks = sql_rank({k: row["gap"] for k, row in out.items() if k[0] == cluster and k[2] == wave})
        for k, rank in ranks.items():
            out[k]["rank_in_cluster"] = rank
    return out


def _gap(rows) -> Fraction | None:
    importance, satisfaction = mean(r["importance"] for r in rows), mean(r["satisfaction"] for r in rows)
    return importance - satisfaction if importance is not None and satisfaction is not None else None


# ----------------------------------------------------------------------------------- mart_partnership_indicators

PARTNERSHIP_INDICATORS = Spec(
    key=("cluster_id", "indicator_code", "year"),
    columns={
        "indicator_name": SAME,
        "theme": SAME,
        "unit": SAME,
        "direction": SAME,
        "source_type": SAME,
        "geo_scope": SAME,
        "geo_codes": SAME,
        "nuts_versions": SAME,
        "value": R6,
        "national_value": R6,
        "eu27_value": R6,
        "index_vs_eu": R2,
        "baseline_year": SAME,
        "baseline_value": R6,
        "baseline_check": SAME,
        "target_year": SAME,
        "target_value": R6,
        "progress": R6,
        "elapsed_share": R6,
        "is_on_track": SAME,
        "value_cagr_start": R6,
        "cagr": R6,
        **{f: SAME for f in FLAGS},
        "quality_flag": SAME,
    },
)


def cluster_indicator_values(inputs: Inputs) -> dict[tuple, dict]:
    """Every cluster x indicator x year value: Eurostat (aggregated over the cluster's geography) and surveys."""
    values = eurostat.cluster_values(inputs, eurostat.resolved_values(inputs))
    for key, value in surveys.survey_indicator_values(inputs).items():
        values[key] = {
            "geo_scope": "cluster",
            "geo_codes": None,
            "value": value,
            "national_value": None,
            "eu27_value": None,
            **dict.fromkeys(FLAGS, False),
            "nuts_versions": None,
            "quality_flag": None,
        }
    return values


def mart_partnership_indicators(inputs: Inputs) -> dict[tuple, dict]:
    """index_vs_eu = 100 x value / EU27 value (not for additive indicators, aggregation = sum);
    progress = (value - baseline) / (target - baseline); elapsed_share = (year - baseline_year) / (target_year -
    baseline_year) clamped to [0, 1]; is_on_track = progress >= elapsed_share; cagr = (value / value n years
    earlier)^(1/n) - 1 (both > 0); baseline_check: baseline year without a value, or a baseline more than
    baseline_tolerance x |observed| away from the value observed that year."""
    n = int(inputs.vars["cagr_years"])
    tolerance = Fraction(str(inputs.vars["baseline_tolerance"]))
    clusters, indicators = inputs.seed("clusters", "cluster_id"), inputs.seed("indicators", "indicator_code")
    targets = {(t["cluster_id"], t["indicator_code"]): t for t in inputs.seeds["strategy_targets"]}
    values = cluster_indicator_values(inputs)

    def value_in(cluster, code, year):
        return (values.get((cluster, code, year)) or {}).get("value")

    out = {}
    for (cluster, code, year), row in values.items():
        if cluster not in clusters:
            continue
        indicator, target = indicators[code], targets.get((cluster, code), {})
        value, eu27 = row["value"], row["eu27_value"]
        base, goal = target.get("baseline_value"), target.get("target_value")
        base_year, goal_year = target.get("baseline_year"), target.get("target_year")
        progress = div(value - base, goal - base) if None not in (value, base, goal) else None
        elapsed = (
            min(1, max(0, div(year - base_year, goal_year - base_year)))
            if None not in (base_year, goal_year) and goal_year != base_year
            else None
        )
        start = value_in(cluster, code, year - n)
        observed = value_in(cluster, code, base_year)
        out[(cluster, code, year)] = {
            **row,
            **{c: indicator[c] for c in ("indicator_name", "theme", "unit", "direction", "source_type")},
            "index_vs_eu": 100 * div(value, eu27)
            if indicator["aggregation"] != "sum" and div(value, eu27) is not None
            else None,
            "baseline_year": base_year,
            "baseline_value": base,
            "target_year": goal_year,
            "target_value": goal,
            "progress": progress,
            "elapsed_share": elapsed,
            "is_on_track": progress >= elapsed if None not in (progress, elapsed) else None,
            "value_cagr_start": start,
            "cagr": power(value / start, Fraction(1, n)) - 1 if start and value and start > 0 and value > 0 else None,
            "baseline_check": None
            if base_year is None or base is None
            else (
                "baseline_year_without_data"
                if observed is None
                else "baseline_differs_from_observed"
                if abs(base - observed) > tolerance * abs(observed)
                else None
            ),
        }
    return out


# ---------------------------------------------------------------------------------------- mart_region_benchmarks

REGION_BENCHMARKS = Spec(
    key=("geo_code", "indicator_code", "year"),
    columns={
        "geo_name": SAME,
        "nuts_level": SAME,
        "country_code": SAME,
        "is_eu27": SAME,
        "nuts_version": SAME,
        "value": R6,
        "national_value": R6,
        "eu27_value": R6,
        "index_vs_eu": R2,
        "rank_in_level": SAME,
        "n_regions_in_level": SAME,
        "sector_share": R6,
        "eu27_sector_share": R6,
        "location_quotient": R4,
        "is_cluster_region": SAME,
        "cluster_ids": SAME,
        **{f: SAME for f in FLAGS},
    },
)


def mart_region_benchmarks(inputs: Inputs) -> dict[tuple, dict]:
    """Every NUTS 1/2/3 region x Eurostat indicator x year: rank among the EU27 regions of the same level with a
    value (best first: descending for direction = higher, ascending for lower; ties share a rank), and for sector
    indicators LQ = (E_sector,region / E_total,region) / (E_sector,EU27 / E_total,EU27)."""
    resolved = eurostat.resolved_values(inputs)
    indicators, nuts = inputs.seed("indicators", "indicator_code"), inputs.seed("nuts_regions", "nuts_code")
    eu27_countries = set(inputs.vars["eu27_countries"])
    clusters_of: dict[str, list[str]] = {}
    for region in inputs.seeds["cluster_regions"]:
        clusters_of.setdefault(region["nuts_code"], []).append(region["cluster_id"])
    levels = {"nuts1": 1, "nuts2": 2, "nuts3": 3}

    def value_of(code, geo, year, geo_types=None):
        row = resolved.get((code, geo, year))
        return row["value"] if row and (geo_types is None or row["geo_type"] in geo_types) else None

    out = {}
    for (code, geo, year), row in resolved.items():
        if row["geo_type"] not in levels:
            continue
        indicator, total_code = indicators[code], indicators[code]["lq_total_indicator_code"]
        value, eu27 = row["value"], value_of(code, eurostat.EU27, year)
        sector_share = div(value, value_of(total_code, geo, year, levels)) if total_code else None
        eu27_share = div(eu27, value_of(total_code, eurostat.EU27, year)) if total_code else None
        out[(geo, code, year)] = {
            "geo_name": (nuts.get(geo) or {}).get("nuts_name"),
            "nuts_level": levels[row["geo_type"]],
            "country_code": row["country_code"],
            "is_eu27": row["country_code"] in eu27_countries,
            "nuts_version": row["nuts_version"],
            "value": value,
            "national_value": value_of(code, row["country_code"], year, ("country",)),
            "eu27_value": eu27,
            "index_vs_eu": 100 * div(value, eu27)
            if indicator["aggregation"] != "sum" and div(value, eu27) is not None
            else None,
            "sector_share": sector_share,
            "eu27_sector_share": eu27_share,
            "location_quotient": div(sector_share, eu27_share),
            "is_cluster_region": geo in clusters_of,
            "cluster_ids": ",".join(sorted(clusters_of.get(geo, []))) or None,
            **{f: row[f] for f in FLAGS},
        }
    ranked = defaultdict(dict)  # (indicator, year, level) -> {key: value} of the EU27 regions with a value
    for key, row in out.items():
        if row["is_eu27"] and row["value"] is not None:
            ranked[(key[1], key[2], row["nuts_level"])][key] = row["value"]
    for (code, _, _), group_values in ranked.items():
        ranks = sql_rank(group_values, descending=indicators[code]["direction"] != "lower")
        for key, rank in ranks.items():
            out[key]["rank_in_level"] = rank
    for key, row in out.items():
        row.setdefault("rank_in_level", None)
        row["n_regions_in_level"] = len(ranked.get((key[1], key[2], row["nuts_level"]), {}))
    return out


# --------------------------------------------------------------------------------------------- mart_matchmaking

MATCHMAKING = Spec(
    key=("offer_cluster_id", "offer_respondent_pid", "need_cluster_id", "need_respondent_pid", "topic_code"),
    columns={
        "topic_label": SAME,
        "topic_kind": SAME,
        "offer_wave": SAME,
        "need_wave": SAME,
        "n_shared_interests": SAME,
        "shared_interests": SAME,
        "is_need_priority": SAME,
        "match_score": R4,
        "match_rank": SAME,
    },
)


def matchmaking_members(inputs: Inputs) -> list[dict]:
    """Offers and needs of each cluster's latest SME-survey wave, with the member's cross-sector interests and
    whether a needed service is one of the member's top-3 priorities."""
    offers_needs = inputs.surveys["survey_sme_offers_needs"]
    latest = {c: max(r["wave"] for r in rows) for (c,), rows in group(offers_needs, "cluster").items()}
    interests = defaultdict(set)
    for r in inputs.surveys["survey_sme_interests"]:
        interests[(r["cluster"], r["wave"], r["respondent_pid"])].add(r["sector"])
    priorities = {
        (r["cluster"], r["wave"], r["respondent_pid"], r["service"])
        for r in inputs.surveys["survey_sme_service_ratings"]
        if r["priority_top3"]
    }
    return [
        {
            **r,
            "interests": interests[(r["cluster"], r["wave"], r["respondent_pid"])],
            "is_priority": (r["cluster"], r["wave"], r["respondent_pid"], r["code"]) in priorities,
        }
        for r in offers_needs
        if r["wave"] == latest[r["cluster"]]
    ]


def mart_matchmaking(inputs: Inputs) -> dict[tuple, dict]:
    """For each need (member x code), the best N offers of that code by members of OTHER clusters:
    match_score = 1 + 0.25 x shared cross-sector interests + 0.5 if the need is a top-3 priority; match_rank
    1..N by score, ties broken by md5(needing member || '|' || offering member), then the offering member."""
    per_need = int(inputs.vars["matchmaking_offers_per_need"])
    codes = inputs.seed("survey_codes", "code")
    members = matchmaking_members(inputs)
    offers = group([m for m in members if m["direction"] == "offer"], "code")
    out = {}
    for need in (m for m in members if m["direction"] == "need"):
        candidates = []
        for offer in offers.get((need["code"],), []):
            if offer["cluster"] == need["cluster"]:
                continue
            shared = sorted(offer["interests"] & need["interests"])
            score = 1 + Fraction(1, 4) * len(shared) + (Fraction(1, 2) if need["is_priority"] else 0)
            pair_hash = hashlib.md5(f"{need['respondent_pid']}|{offer['respondent_pid']}".encode()).hexdigest()  # noqa: S324 - the documented tie-break
            candidates.append((-score, pair_hash, offer["respondent_pid"], offer, shared, score))
        for rank, (_, _, _, offer, shared, score) in enumerate(sorted(candidates, key=lambda c: c[:3])[:per_need], 1):
            code = codes.get(need["code"]) or {}
            out[(offer["cluster"], offer["respondent_pid"], need["cluster"], need["respondent_pid"], need["code"])] = {
                "topic_label": code.get("label"),
                "topic_kind": code.get("code_list"),
                "offer_wave": offer["wave"],
                "need_wave": need["wave"],
                "n_shared_interests": len(shared),
                "shared_interests": ",".join(shared) or None,
                "is_need_priority": need["is_priority"],
                "match_score": score,
                "match_rank": rank,
            }
    return out


# ------------------------------------------------------------------------------------- mart_cluster_similarity

CLUSTER_SIMILARITY = Spec(
    key=("cluster_a", "cluster_b"),
    columns={
        "indicator_similarity": R6,
        "n_indicators_compared": SAME,
        "needs_similarity": R6,
        "n_services_compared": SAME,
        "top_shared_needs": SAME,
        "a_strengths_for_b_weaknesses": SAME,
        "b_strengths_for_a_weaknesses": SAME,
    },
)


def cosine(a: dict, b: dict):
    """sum(a_i b_i) / (|a| |b|) over the keys both have; (None, n) when a norm is 0."""
    common = sorted(a.keys() & b.keys())
    a, b = {k: Fraction(a[k]) for k in common}, {k: Fraction(b[k]) for k in common}
    dot = sum((a[k] * b[k] for k in common), Fraction(0))
    norms = sqrt(sum((a[k] ** 2 for k in common), Fraction(0))) * sqrt(sum((b[k] ** 2 for k in common), Fraction(0)))
    return (div(dot, norms) if common else None), len(common)


def indicator_profiles(inputs: Inputs) -> dict[str, dict]:
    """cluster -> {indicator: z}: latest non-null value of each intensive indicator (aggregation <> sum), z-scored
    across the clusters having it, z = (v - mean) / stddev_pop (indicators with stddev 0 drop out)."""
    indicators = inputs.seed("indicators", "indicator_code")
    latest = {}
    for (cluster, code, _), row in sorted(cluster_indicator_values(inputs).items(), key=lambda item: item[0]):
        if indicators[code]["aggregation"] != "sum" and row["value"] is not None:
            latest[(cluster, code)] = row["value"]  # sorted by year: the last one wins
    profiles = defaultdict(dict)
    for code in {c for _, c in latest}:
        values = {cl: v for (cl, c), v in latest.items() if c == code}
        centre = mean(values.values())
        spread = sqrt(mean((v - centre) ** 2 for v in values.values()))
        if spread != 0:
            for cluster, value in values.items():
                profiles[cluster][code] = div(value - centre, spread)
    return profiles


def mart_cluster_similarity(inputs: Inputs) -> dict[tuple, dict]:
    """Per cluster pair (a < b): cosine of the z-scored indicator profiles, cosine of the SME-needs gap vectors
    (gap per service in each cluster's latest wave, unrounded as mart_sme_needs keeps it), the top shared needs
    (positive gap in both, largest gap_a + gap_b first, then the code) and SWOT synergies (themes where one
    cluster's strength is the other's weakness, latest year of each cluster)."""
    top_n = int(inputs.vars["top_shared_needs"])
    profiles = indicator_profiles(inputs)
    needs = mart_sme_needs(inputs)
    latest_wave = {c: max(w for cl, _, w in needs if cl == c) for c, _, _ in needs}
    gaps = defaultdict(dict)
    for (cluster, service, wave), row in needs.items():
        if wave == latest_wave[cluster] and row["gap"] is not None:
            gaps[cluster][service] = row["gap"]
    swot = inputs.surveys["survey_soa_swot"]
    swot_year = {c: max(r["wave"] for r in rows) for (c,), rows in group(swot, "cluster").items()}
    themes = defaultdict(set)  # (cluster, kind) -> themes of its latest year
    for r in swot:
        theme = (r["theme"] or "").strip().lower()
        if r["wave"] == swot_year[r["cluster"]] and theme:
            themes[(r["cluster"], r["kind"])].add(theme)
    ids = sorted(c["cluster_id"] for c in inputs.seeds["clusters"])
    out = {}
    for a in ids:
        for b in (b for b in ids if b > a):
            indicator_similarity, n_indicators = cosine(profiles.get(a, {}), profiles.get(b, {}))
            needs_similarity, n_services = cosine(gaps.get(a, {}), gaps.get(b, {}))
            shared = sorted(
                (s for s in gaps[a].keys() & gaps[b].keys() if gaps[a][s] > 0 and gaps[b][s] > 0),
                key=lambda s: (-(gaps[a][s] + gaps[b][s]), s),
            )
            out[(a, b)] = {
                "indicator_similarity": indicator_similarity,
                "n_indicators_compared": n_indicators,
                "needs_similarity": needs_similarity,
                "n_services_compared": n_services,
                "top_shared_needs": ",".join(shared[:top_n]) or None,
                "a_strengths_for_b_weaknesses": ",".join(sorted(themes[(a, "strength")] & themes[(b, "weakness")]))
                or None,
                "b_strengths_for_a_weaknesses": ",".join(sorted(themes[(b, "strength")] & themes[(a, "weakness")]))
                or None,
            }
    return out


MARTS = {
    "mart_cluster_kpis": (mart_cluster_kpis, CLUSTER_KPIS),
    "mart_sme_needs": (mart_sme_needs, SME_NEEDS),
    "mart_partnership_indicators": (mart_partnership_indicators, PARTNERSHIP_INDICATORS),
    "mart_region_benchmarks": (mart_region_benchmarks, REGION_BENCHMARKS),
    "mart_matchmaking": (mart_matchmaking, MATCHMAKING),
    "mart_cluster_similarity": (mart_cluster_similarity, CLUSTER_SIMILARITY),
}
