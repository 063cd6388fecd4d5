"""Page parts both kinds of page show, as plain dicts of text for the templates (which escape all of it):
indicator and KPI cards, matchmaking candidates, data quality and data freshness."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ingest.dashboard.data import MARTS, MartData, flags, latest_per, status
from ingest.dashboard.formatting import (
    fmt_index,
    fmt_number,
    fmt_pct,
    fmt_share,
    fmt_ts,
    fmt_unit,
    num,
    page_name,
    text,
)

MATCH_ROWS = 15
FLAG_KINDS = ["provisional", "estimated", "confidential", "break in series"]
STATUS_CLASS = {"On track": "ok", "Behind": "bad"}
# mart_partnership_indicators.baseline_check -> the note under a target (progress against it says little).
BASELINE_NOTES = {
    "baseline_year_without_data": "No data in the baseline year: the baseline cannot be checked.",
    "baseline_differs_from_observed": "The baseline differs from the value observed in its year (more than 5 %).",
}
# A survey file not at <cluster>/<instrument>/<file> (its batch object says None there): quarantined as wrong_depth.
MISPLACED = "(misplaced file)"
# mart -> the column whose maximum is the "latest year / wave" of the freshness table
YEAR_COLUMNS = {
    "mart_partnership_indicators": "year",
    "mart_region_benchmarks": "year",
    "mart_sme_needs": "wave",
    "mart_cluster_kpis": "year",
    "mart_matchmaking": "need_wave",
}


# ------------------------------------------------------------------------------------------------ cards
def indicator_card(row: dict) -> dict:
    """One indicator's latest value, target progress, comparisons and quality flags."""
    state = status(row)
    cls = STATUS_CLASS.get(state, "")
    unit = row.get("unit")
    meta = f"{text(row.get('year'))} · {row.get('geo_scope') or ''}"
    if row.get("geo_codes"):
        meta += f" · {row['geo_codes']}"
    card: dict[str, Any] = {
        "cls": cls,
        "code": text(row.get("indicator_code")),
        "title": text(row.get("indicator_name") or row.get("indicator_code")),
        "value": fmt_unit(row.get("value"), unit),
        "meta": meta,
        "target": None,
    }
    if row.get("target_value") is not None:
        progress, elapsed = num(row.get("progress")), num(row.get("elapsed_share"))
        card["target"] = {
            "text": f"Target {fmt_unit(row.get('target_value'), unit)} by {text(row.get('target_year'))} "
            f"(baseline {fmt_unit(row.get('baseline_value'), unit)}, {text(row.get('baseline_year'))})",
            "width": f"{0.0 if progress is None else max(0.0, min(1.0, progress)) * 100:.1f}",
            "marker": None if elapsed is None else f"{max(0.0, min(1.0, elapsed)) * 100:.1f}",
            "progress": fmt_pct(progress),
            "elapsed": fmt_pct(elapsed),
            "note": BASELINE_NOTES.get(row.get("baseline_check") or ""),
        }
    badges = [(f"badge {cls}", state)]
    if row.get("index_vs_eu") is not None:
        badges.append(("badge", f"EU index {fmt_index(row.get('index_vs_eu'))} (EU = 100)"))
    elif row.get("eu27_value") is not None:
        badges.append(("badge", f"EU27 {fmt_unit(row.get('eu27_value'), unit)}"))
    if row.get("national_value") is not None:
        badges.append(("badge", f"National {fmt_unit(row.get('national_value'), unit)}"))
    if num(row.get("cagr")) is not None:
        badges.append(("badge", f"CAGR {num(row.get('cagr')) * 100:+.1f} %"))
    badges += [("badge flag", f) for f in flags(row)]
    card["badges"] = badges
    return card


def kpi_cards(kpi: dict) -> list[tuple[str, str]]:
    """(label, value) of the cluster organisation's state of affairs."""
    return [
        ("Members", fmt_unit(kpi.get("members_total"), "NR")),
        ("SME share of members", fmt_share(kpi.get("sme_share_of_members"))),
        ("Member growth", fmt_share(kpi.get("member_growth"))),
        ("Member retention", fmt_share(kpi.get("member_retention"))),
        ("Employees of members", fmt_unit(kpi.get("member_employees"), "persons")),
        ("Member turnover", fmt_unit(kpi.get("member_turnover_eur"), "EUR")),
        ("Innovation turnover", fmt_unit(kpi.get("innovation_turnover_eur"), "EUR")),
        ("Cluster staff", fmt_unit(kpi.get("staff_fte"), "FTE")),
        ("Events", fmt_unit(kpi.get("events"), "NR")),
        ("B2B meetings", fmt_unit(kpi.get("b2b_meetings"), "NR")),
        ("Matchmaking contacts", fmt_unit(kpi.get("matchmaking_contacts"), "NR")),
        (
            "Joint projects won / submitted",
            fmt_unit(kpi.get("joint_projects_won"), "NR") + " / " + fmt_unit(kpi.get("joint_projects_submitted"), "NR"),
        ),
        ("SME survey respondents", fmt_unit(kpi.get("sme_survey_respondents"), "NR")),
        ("Mean digital maturity (1-5)", fmt_unit(kpi.get("sme_mean_digital_maturity"), "SCORE")),
        ("SMEs offering low-carbon products", fmt_unit(kpi.get("sme_low_carbon_share_pct"), "PC")),
    ]


# ------------------------------------------------------------------------------------------------ shared sections
def _pid(pid: Any) -> dict[str, str]:
    full = str(pid or "")
    return {"full": full, "short": full if len(full) <= 12 else full[:10] + "…"}


def matchmaking(rows: list[dict], names: dict[str, str], limit: int = MATCH_ROWS) -> dict | None:
    if not rows:
        return None
    ordered = sorted(
        rows,
        key=lambda r: (-(num(r.get("match_score")) or 0), r.get("match_rank") or 0, r.get("topic_code") or ""),
    )
    shown = [
        {
            "topic": text(r.get("topic_label") or r.get("topic_code")),
            "offer": text(names.get(r["offer_cluster_id"], r["offer_cluster_id"])),
            "offer_pid": _pid(r.get("offer_respondent_pid")),
            "need": text(names.get(r["need_cluster_id"], r["need_cluster_id"])),
            "need_pid": _pid(r.get("need_respondent_pid")),
            "score": fmt_number(num(r.get("match_score")) or 0, 2),
            "why": r.get("explanation") or "",
        }
        for r in ordered[:limit]
    ]
    return {"rows": shown, "limit": limit, "total": f"{len(rows):,}", "more": len(rows) > limit}


def freshness(data: MartData) -> dict:
    f = data.freshness
    last = f.get("last_run")
    as_of = {r.get("as_of_date") for r in data.rows("mart_partnership_indicators")} - {None}
    marts = []
    for mart in MARTS:
        rows = data.rows(mart)
        col = YEAR_COLUMNS.get(mart)
        years = [r[col] for r in rows if col and r.get(col) is not None]
        state = "not built yet" if mart not in data.present else ("empty" if not rows else "ok")
        marts.append([mart, f"{len(rows):,}", str(max(years)) if years else "–", state])
    return {
        "last_run": {
            "run_id": text(last.get("run_id")),
            "logical_date": text(last.get("logical_date")),
            "finished": fmt_ts(last.get("finished_at")),
        }
        if last
        else None,
        "as_of": ", ".join(sorted(map(str, as_of))),
        "marts": marts,
        "sources": [
            [text(s["source"]), text(s["objects"]), fmt_ts(s["last_loaded"]), fmt_ts(s["source_updated"])]
            for s in f.get("sources") or []
        ],
    }


def quality(data: MartData, cluster_id: str | None, names: dict[str, str]) -> dict:
    """Quality flags of the latest values, Eurostat revisions and (overview only) quarantined batches."""
    pi = data.rows("mart_partnership_indicators")
    if cluster_id is not None:
        pi = [r for r in pi if r["cluster_id"] == cluster_id]
    latest = latest_per(pi, ("cluster_id", "indicator_code"))
    flagged = [r for r in latest if flags(r)]
    view: dict[str, Any] = {"latest": len(latest), "flagged": len(flagged), "by_cluster": None, "by_indicator": None}
    if flagged and cluster_id is None:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in flagged:
            counts[r["cluster_id"]]["any"] += 1
            for flag in flags(r):
                counts[r["cluster_id"]][flag] += 1
        view["kinds"] = [k.capitalize() for k in FLAG_KINDS]
        view["by_cluster"] = [
            {"href": page_name(c), "name": names.get(c, c), "counts": [counts[c][k] for k in ("any", *FLAG_KINDS)]}
            for c in sorted(counts, key=lambda c: names.get(c, c).lower())
        ]
    elif flagged:
        view["by_indicator"] = [
            {
                "name": text(r.get("indicator_name") or r.get("indicator_code")),
                "year": text(r.get("year")),
                "flags": flags(r),
            }
            for r in sorted(flagged, key=lambda r: r.get("indicator_code") or "")
        ]
    revisions = data.rows("mart_eurostat_revisions")
    recent = sorted(revisions, key=lambda r: str(r.get("revision_detected_at") or ""), reverse=True)[:10]
    view["revisions"] = [
        [
            text(r.get("dataset")),
            text(r.get("geo_code")),
            text(r.get("time_period")),
            fmt_unit(r.get("previous_value"), ""),
            fmt_unit(r.get("value"), ""),
            "–" if num(r.get("revision_pct")) is None else f"{num(r.get('revision_pct')):+.1f} %",
            str(r.get("revision_detected_at") or "")[:16].replace("T", " "),
        ]
        for r in recent
    ]
    view["revisions_total"] = f"{len(revisions):,}"
    view["revisions_checked"] = "mart_eurostat_revisions" in data.present
    quarantined = (data.freshness.get("quarantined") or []) if cluster_id is None else []
    view["quarantined"] = [
        [
            text(q["source"]),
            text(q["object"]),
            q.get("status") or "",
            text(q.get("problems") if q.get("problems") is not None else "–"),
            q.get("codes") or "–",
            fmt_ts(q["updated_at"]),
        ]
        for q in quarantined
    ]
    no_facts = {"codes": None, "eurostat": None, "surveys": None}  # a cluster page: the overview has them
    view.update(audit_quality(data, names) if cluster_id is None else no_facts)
    return view


def audit_quality(data: MartData, names: dict[str, str]) -> dict[str, Any]:
    """Overview only: open quarantines by problem code, and freshness per source (Eurostat dataset; cluster and
    survey instrument). Codes, counts and dates (audit.dashboard_* views, migration 0010); None: not recorded."""
    f = data.freshness
    codes = f.get("quarantine_codes")
    eurostat = f.get("eurostat_freshness")
    surveys = f.get("survey_freshness")
    return {
        "codes": None
        if codes is None
        else [
            [text(r["source"]), text(r["code"]), f"{r['batches']:,}", f"{r['problems']:,}", fmt_ts(r.get("latest"))]
            for r in codes
        ],
        "eurostat": None
        if eurostat is None
        else [
            [
                text(r["dataset"]),
                fmt_ts(r.get("last_receipt")),
                fmt_ts(r.get("last_check")) + (f" ({r['last_decision']})" if r.get("last_decision") else ""),
                text(r.get("toc_last_update")) or "–",
                fmt_ts(r.get("source_updated_at")),
                fmt_ts(r.get("last_loaded")),
            ]
            for r in eurostat
        ],
        "surveys": None
        if surveys is None
        else [
            [
                MISPLACED if r["cluster_id"] == "None" else text(names.get(r["cluster_id"], r["cluster_id"])),
                MISPLACED if r["instrument"] == "None" else text(r["instrument"]),
                f"{r['files']:,}",
                fmt_ts(r.get("last_receipt")),
                text(r.get("last_logical_date")) or "–",
                text(r.get("last_status")) or "–",
                fmt_ts(r.get("last_loaded")),
            ]
            for r in surveys
        ],
    }
