"""Survey building blocks, from the documented formulas (int_cluster_kpis header, int_sme_cluster_wave_outcomes
YAML, the indicators seed's survey rows). Every input row is already the latest file of its cluster x wave."""

from __future__ import annotations

import re
from collections import defaultdict
from fractions import Fraction

from tests.pipeline.recompute.exact import div, mean
from tests.pipeline.recompute.inputs import Inputs

MEMBER_TYPES = ("members_sme", "members_large_company", "members_research", "members_public", "members_other")
KPI_FIELDS = (
    "events",
    "b2b_meetings",
    "matchmaking_contacts",
    "joint_projects_submitted",
    "joint_projects_won",
    "services_offered",
    "cross_sector_collaborations",
    "members_joined",
    "members_left",
)
PROFILE_FIELDS = ("member_employees", "member_turnover_eur", "innovation_turnover_eur", "staff_fte")


def group(rows, *keys) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        out[tuple(row[k] for k in keys)].append(row)
    return out


def labels(text: str | None) -> tuple[str | None, int]:
    """Labels as reported (trimmed, empty = null) and how many: items separated by ; , or |."""
    text = (text or "").strip() or None
    return text, len([part for part in re.split(r"[;,|]", text or "") if part.strip()])


def cluster_kpis(inputs: Inputs) -> dict[tuple, dict]:
    """Layer-B KPIs per (cluster, year) from the state of affairs: profile and KPI figures of the year's file."""
    profiles = {(r["cluster"], r["wave"]): r for r in inputs.surveys["survey_soa_profile"]}
    kpis = {(r["cluster"], r["wave"]): r for r in inputs.surveys["survey_soa_kpis"]}

    def total(key):
        profile = profiles.get(key)
        return sum(profile[t] for t in MEMBER_TYPES) if profile else None

    out = {}
    for cluster, year in profiles.keys() | kpis.keys():
        profile = profiles.get((cluster, year), {})
        figures = kpis.get((cluster, year), {})
        members_total, previous = total((cluster, year)), total((cluster, year - 1))
        label_text, label_count = labels(profile.get("labels"))
        left_share = div(figures.get("members_left"), previous)
        out[(cluster, year)] = {
            **{t: profile.get(t) for t in MEMBER_TYPES + PROFILE_FIELDS},
            **{f: figures.get(f) for f in KPI_FIELDS},
            "members_total": members_total,
            "members_total_prev": previous,
            "sme_share_of_members": div(profile.get("members_sme"), members_total),
            "member_growth": div(members_total - previous, previous) if None not in (members_total, previous) else None,
            "member_retention": 1 - left_share if left_share is not None else None,
            "project_success_rate": div(figures.get("joint_projects_won"), figures.get("joint_projects_submitted")),
            "labels": label_text if profile else None,
            "labels_count": label_count if profile else None,
        }
    return out


def sme_wave_outcomes(inputs: Inputs) -> dict[tuple, dict]:
    """SME survey outcomes per (cluster, wave): respondents, mean digital maturity, low-carbon share (100 x
    offering / answering), mean gap over answered (respondent, service) pairs, cross-sector interest shares
    (distinct interested respondents / respondents)."""
    ratings = group(inputs.surveys["survey_sme_service_ratings"], "cluster", "wave")
    interests = group(inputs.surveys["survey_sme_interests"], "cluster", "wave")
    out = {}
    for key, respondents in group(inputs.surveys["survey_sme_respondents"], "cluster", "wave").items():
        answered = [r["low_carbon_offer"] for r in respondents if r["low_carbon_offer"] is not None]
        pairs = [
            r["importance"] - r["satisfaction"]
            for r in ratings.get(key, [])
            if r["importance"] is not None and r["satisfaction"] is not None
        ]
        row = {
            "n_respondents": len(respondents),
            "mean_digital_maturity": mean(r["digital_maturity"] for r in respondents),
            "low_carbon_share_pct": div(100 * sum(answered), len(answered)),
            "mean_gap": mean(pairs),
            "mean_impact": mean(r["impact"] for r in ratings.get(key, [])),
        }
        for sector in inputs.vars["cross_sectors"]:
            interested = {r["respondent_pid"] for r in interests.get(key, []) if r["sector"] == sector}
            row[f"interest_share_{sector}"] = Fraction(len(interested), len(respondents))
        out[key] = row
    return out


def survey_indicator_values(inputs: Inputs) -> dict[tuple, Fraction]:
    """Survey indicators of the indicators seed per (cluster, indicator, year): the seed's survey_field names
    the figure (members_sme_share = 100 x members_sme / members_total, as the seed's formula says)."""
    kpis, outcomes = cluster_kpis(inputs), sme_wave_outcomes(inputs)
    fields = {
        "survey_state_of_affairs": {
            key: {
                **row,
                "members_sme_share": 100 * row["sme_share_of_members"]
                if row["sme_share_of_members"] is not None
                else None,
            }
            for key, row in kpis.items()
        },
        "survey_sme_needs": {
            key: {
                "n_respondents": row["n_respondents"],
                "gap": row["mean_gap"],
                "impact": row["mean_impact"],
                "digital_maturity": row["mean_digital_maturity"],
                "offers_low_carbon": row["low_carbon_share_pct"],
            }
            for key, row in outcomes.items()
        },
    }
    out = {}
    for indicator in inputs.seeds["indicators"]:
        for (cluster, year), figures in fields.get(indicator["source_type"], {}).items():
            value = figures.get(indicator["survey_field"])
            if value is not None:
                out[(cluster, indicator["indicator_code"], year)] = Fraction(value)
    return out
