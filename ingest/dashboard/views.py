"""What each page shows, as plain dicts of text and numbers for the templates (which escape all of it).

Chart rows (``scoreboard``, ``needs.rows``, ``similarity.heatmap`` / ``bars``, ``trajectories[].rows``) are the data
of the Vega-Lite specs that :mod:`ingest.dashboard.pages` builds; ``None`` for a section means "no data yet".
"""

from __future__ import annotations

from collections import defaultdict

from ingest.dashboard.data import (
    SIMILARITY_MEASURES,
    THEMES,
    MartData,
    latest_per,
    service_list,
    similarity_rows,
    sme_latest,
    status,
    theme_order,
    trajectory_rows,
)
from ingest.dashboard.formatting import fmt_pct, fmt_share, fmt_unit, num, page_name, text
from ingest.dashboard.provenance import banner
from ingest.dashboard.sections import freshness, indicator_card, kpi_cards, matchmaking, quality


# ------------------------------------------------------------------------------------------------ overview
def overview(data: MartData, names: dict[str, str]) -> dict:
    """The partnership overview (index.html)."""
    latest = latest_per(data.rows("mart_partnership_indicators"), ("cluster_id", "indicator_code"))
    with_target = [r for r in latest if r.get("target_value") is not None]
    if names:
        subtitle = f"{len(names)} cluster{'s' if len(names) != 1 else ''} · 5-year cluster partnership strategy"
    else:
        subtitle = "No data yet"
    return {
        "banner": banner(data),
        "empty": data.is_empty,
        "subtitle": subtitle,
        "clusters": _cluster_cards(data, names, latest),
        "scoreboard": [
            {
                "cluster": names.get(r["cluster_id"], r["cluster_id"]),
                "indicator": r.get("indicator_name") or r.get("indicator_code"),
                "year": r.get("year"),
                "status": status(r),
                "value_text": fmt_unit(r.get("value"), r.get("unit")),
                "target_text": f"{fmt_unit(r.get('target_value'), r.get('unit'))} by {r.get('target_year')}",
                "progress_text": fmt_pct(r.get("progress")),
                "elapsed_text": fmt_pct(r.get("elapsed_share")),
            }
            for r in with_target
        ],
        "needs": _partnership_needs(data.rows("mart_sme_needs"), names),
        "similarity": _synergies(data, names),
        "matchmaking": matchmaking(data.rows("mart_matchmaking"), names),
        "quality": quality(data, None, names),
        "freshness": freshness(data),
    }


def _cluster_cards(data: MartData, names: dict[str, str], latest: list[dict]) -> list[dict]:
    kpis = {r["cluster_id"]: r for r in latest_per(data.rows("mart_cluster_kpis"), ("cluster_id",))}
    cards = []
    for cid, name in names.items():
        targets = [r for r in latest if r["cluster_id"] == cid and r.get("is_on_track") is not None]
        on = sum(1 for r in targets if r["is_on_track"])
        k = kpis.get(cid, {})
        facts = [f"{on} of {len(targets)} targets on track" if targets else "no strategy targets yet"]
        if k.get("members_total") is not None:
            facts.append(f"{fmt_unit(k['members_total'], 'NR')} members ({k['year']})")
        if k.get("sme_survey_respondents") is not None:
            facts.append(f"{fmt_unit(k['sme_survey_respondents'], 'NR')} SME survey respondents")
        cls = "" if not targets else ("ok" if on * 2 >= len(targets) else "bad")
        cards.append({"cid": cid, "href": page_name(cid), "name": name, "cls": cls, "facts": facts})
    return cards


def _partnership_needs(needs: list[dict], names: dict[str, str]) -> dict | None:
    """Latest wave: the pooled gap per service and each cluster's own gap."""
    if not needs:
        return None
    wave = max(r["wave"] for r in needs)
    pooled: dict[str, dict] = {}
    rows = []
    for r in (r for r in needs if r["wave"] == wave):
        label = r.get("service_label") or r["service_code"]
        if num(r.get("partnership_gap")) is not None:
            pooled[label] = {"kind": "Partnership", "service": label, "gap": num(r["partnership_gap"])}
        if num(r.get("gap")) is not None:
            cluster = names.get(r["cluster_id"], r["cluster_id"])
            rows.append({"kind": "Cluster", "service": label, "cluster": cluster, "gap": num(r["gap"])})
    if not (pooled or rows):
        return None
    return {"wave": wave, "rows": list(pooled.values()) + rows}


def _synergies(data: MartData, names: dict[str, str]) -> dict | None:
    sim = data.rows("mart_cluster_similarity")
    if not sim:
        return None
    labels = data.service_labels()
    pairs = []
    for r in sorted(sim, key=lambda r: (r["cluster_a"], r["cluster_b"])):
        a, b = names.get(r["cluster_a"], r["cluster_a"]), names.get(r["cluster_b"], r["cluster_b"])
        transfers = []
        if r.get("a_strengths_for_b_weaknesses"):
            transfers.append(f"{a} → {b}: {r['a_strengths_for_b_weaknesses']}")
        if r.get("b_strengths_for_a_weaknesses"):
            transfers.append(f"{b} → {a}: {r['b_strengths_for_a_weaknesses']}")
        pairs.append(
            {"pair": f"{a} – {b}", "shared": service_list(r.get("top_shared_needs"), labels), "transfers": transfers}
        )
    return {"heatmap": similarity_rows(sim, names), "pairs": pairs}


# ------------------------------------------------------------------------------------------------ cluster page
def cluster(data: MartData, names: dict[str, str], cid: str) -> dict:
    """One cluster's page."""
    pi = [r for r in data.rows("mart_partnership_indicators") if r["cluster_id"] == cid]
    kpi_rows = [r for r in data.rows("mart_cluster_kpis") if r["cluster_id"] == cid]
    kpi = max(kpi_rows, key=lambda r: r["year"]) if kpi_rows else None
    traj = trajectory_rows(pi)
    mm = [r for r in data.rows("mart_matchmaking") if cid in (r["offer_cluster_id"], r["need_cluster_id"])]
    return {
        "banner": banner(data),
        "cid": cid,
        "name": names.get(cid, cid),
        "kpi": {"year": kpi["year"], "cards": kpi_cards(kpi), "labels": kpi.get("labels")} if kpi else None,
        "indicators": _indicators(latest_per(pi, ("indicator_code",))),
        "trajectories": [
            {"label": THEMES.get(theme, theme), "rows": traj[theme]} for theme in theme_order(traj) if traj.get(theme)
        ]
        if traj
        else None,
        "needs": _cluster_needs(data.rows("mart_sme_needs"), cid),
        "similarity": _similar_clusters(data, names, cid),
        "matchmaking": matchmaking(mm, names),
        "quality": quality(data, cid, names),
        "freshness": freshness(data),
    }


def _indicators(latest: list[dict]) -> dict | None:
    """Indicator cards grouped by theme (targets first), and how many targets are on track."""
    if not latest:
        return None
    by_theme: dict[str, list[dict]] = defaultdict(list)
    for r in latest:
        by_theme[r.get("theme") or "other"].append(r)
    themes = [
        {
            "label": THEMES.get(theme, theme),
            "cards": [
                indicator_card(r)
                for r in sorted(
                    by_theme[theme], key=lambda r: (r.get("target_value") is None, r.get("indicator_code") or "")
                )
            ],
        }
        for theme in theme_order(by_theme)
        if theme in by_theme
    ]
    targets = [r for r in latest if r.get("is_on_track") is not None]
    on_track = sum(1 for r in targets if r["is_on_track"])
    return {"themes": themes, "targets": len(targets), "on_track": on_track}


def _cluster_needs(needs_rows: list[dict], cid: str) -> dict | None:
    wave, needs = sme_latest(needs_rows, cid)
    rows = [
        {
            "service": r.get("service_label") or r["service_code"],
            "importance": num(r.get("mean_importance")),
            "satisfaction": num(r.get("mean_satisfaction")),
            "gap": num(r.get("gap")),
            "gap_text": "–" if num(r.get("gap")) is None else f"{num(r.get('gap')):+.2f}",
            "respondents": r.get("n_respondents"),
        }
        for r in needs
        if num(r.get("mean_importance")) is not None or num(r.get("mean_satisfaction")) is not None
    ]
    if not rows:
        return None
    first = needs[0]
    interests = [
        f"{k.removeprefix('interest_share_')}: {fmt_share(v)}"
        for k, v in sorted(first.items())
        if k.startswith("interest_share_") and v is not None
    ]
    return {
        "wave": wave,
        "respondents": text(first.get("cluster_wave_respondents")),
        "rows": rows,
        "title": f"Importance vs satisfaction per service ({wave})",
        "interests": "; ".join(interests),
    }


def _similar_clusters(data: MartData, names: dict[str, str], cid: str) -> dict | None:
    sim = [r for r in data.rows("mart_cluster_similarity") if cid in (r["cluster_a"], r["cluster_b"])]
    if not sim:
        return None
    labels = data.service_labels()
    bars, table = [], []
    for r in sorted(sim, key=lambda r: r["cluster_b"] if r["cluster_a"] == cid else r["cluster_a"]):
        mine_is_a = r["cluster_a"] == cid
        other = r["cluster_b"] if mine_is_a else r["cluster_a"]
        oname = names.get(other, other)
        for col, _, label in SIMILARITY_MEASURES:
            if num(r.get(col)) is not None:
                bars.append({"other": oname, "measure": label, "similarity": num(r[col])})
        table.append(
            {
                "href": page_name(other),
                "name": oname,
                "shared": service_list(r.get("top_shared_needs"), labels),
                "share": r.get("a_strengths_for_b_weaknesses" if mine_is_a else "b_strengths_for_a_weaknesses") or "–",
                "learn": r.get("b_strengths_for_a_weaknesses" if mine_is_a else "a_strengths_for_b_weaknesses") or "–",
            }
        )
    return {"bars": bars, "table": table}
