"""Reading the marts (as ``bi_reader``) and row helpers shared by the page views: plain dicts in, plain dicts out."""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from typing import Any

from ingest.dashboard.formatting import fmt_unit, num, unit_label

MARTS = (
    "mart_partnership_indicators",
    "mart_region_benchmarks",
    "mart_sme_needs",
    "mart_cluster_similarity",
    "mart_matchmaking",
    "mart_cluster_kpis",
    "mart_eurostat_revisions",
)

THEMES = {
    "sme": "SMEs",
    "digital": "Digitalisation",
    "low_carbon": "Low carbon",
    "sport": "Sport",
    "regional_context": "Regional context",
    "cluster_kpi": "Cluster organisation KPIs",
    "member_outcome": "Member outcomes (SME survey)",
}

# The dashboard reads as bi_reader: marts, reference.clusters and the audit.dashboard_* views (migrations 0007 and
# 0010), nothing else: codes, counts, hashes and dates of the audit trail, never a message, a row or a URL.
QUARANTINED_SQL = "select source, object, status, problems, codes, updated_at from audit.dashboard_quarantined"
# fresh key -> (view, query) of migration 0010: what the banner and the overview's quality section say. A warehouse
# not migrated to 0010 yet has none of them: the banner then says the origin and the runs are not recorded.
AUDIT_FACTS = {
    "runs": (
        "audit.dashboard_run",
        "select kind, run_id, logical_date, started_at, finished_at, outcome, quarantined, failed_tasks"
        " from audit.dashboard_run",
    ),
    "provenance": (
        "audit.dashboard_provenance",
        "select source, sha256, fetches, loopback, web, inbox, bundled_path, toc_sha256,"
        " coalesce((to_jsonb(p)->>'sdmx')::boolean, false) as sdmx"  # a column since 0013: absent before
        " from audit.dashboard_provenance p",
    ),
    "quarantine_codes": (
        "audit.dashboard_quarantine_codes",
        "select source, code, batches, problems, latest from audit.dashboard_quarantine_codes"
        " order by source, batches desc, problems desc, code",
    ),
    "eurostat_freshness": (
        "audit.dashboard_eurostat_freshness",
        "select dataset, last_receipt, last_check, last_decision, toc_last_update, last_loaded, source_updated_at"
        " from audit.dashboard_eurostat_freshness order by dataset",
    ),
    "survey_freshness": (
        "audit.dashboard_survey_freshness",
        "select cluster_id, instrument, files, last_receipt, last_logical_date, last_status, last_loaded"
        " from audit.dashboard_survey_freshness order by cluster_id, instrument",
    ),
}

FLAG_COLUMNS = {
    "is_provisional": "provisional",
    "is_estimated": "estimated",
    "is_confidential": "confidential",
    "is_break": "break in series",
}

SIMILARITY_MEASURES = (
    ("indicator_similarity", "n_indicators_compared", "Regional indicator profile"),
    ("needs_similarity", "n_services_compared", "SME needs (service gaps)"),
)


# ------------------------------------------------------------------------------------------------ reading
class MartData:
    """Rows of every mart (empty lists for marts that do not exist yet) plus freshness facts."""

    def __init__(self, tables: dict[str, list[dict]], present: set[str], freshness: dict[str, Any]):
        self.tables = tables
        self.present = present
        self.freshness = freshness

    def rows(self, mart: str) -> list[dict]:
        return self.tables.get(mart, [])

    @property
    def is_empty(self) -> bool:
        return not any(self.tables.values())

    def service_labels(self) -> dict[str, str]:
        labels = {r["topic_code"]: r["topic_label"] for r in self.rows("mart_matchmaking") if r.get("topic_label")}
        labels.update(
            {r["service_code"]: r["service_label"] for r in self.rows("mart_sme_needs") if r.get("service_label")}
        )
        return labels

    def cluster_names(self) -> dict[str, str]:
        """Clusters found in the marts -> display name (from the marts / reference table, else the id)."""
        ids: set[str] = set()
        for r in self.rows("mart_partnership_indicators") + self.rows("mart_sme_needs"):
            ids.add(r["cluster_id"])
        for r in self.rows("mart_cluster_kpis"):
            ids.add(r["cluster_id"])
        for r in self.rows("mart_cluster_similarity"):
            ids.update((r["cluster_a"], r["cluster_b"]))
        for r in self.rows("mart_matchmaking"):
            ids.update((r["offer_cluster_id"], r["need_cluster_id"]))
        ids.discard(None)
        names = dict(self.freshness.get("reference_names") or {})
        for r in self.rows("mart_cluster_kpis"):
            if r.get("cluster_name"):
                names[r["cluster_id"]] = r["cluster_name"]
        return {cid: names.get(cid) or cid for cid in sorted(ids, key=lambda c: (names.get(c) or c).lower())}


def _plain(value: Any) -> Any:
    """JSON-friendly value (Decimal -> float, dates -> ISO)."""
    if isinstance(value, decimal.Decimal):
        return num(value)
    if isinstance(value, float):
        return num(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _regclass(cur, name: str) -> bool:
    cur.execute("select to_regclass(%s) is not null as present", (name,))
    row = cur.fetchone()
    return bool(row["present"] if isinstance(row, dict) else row[0])


def read_marts(url: str) -> MartData:
    """Read every mart (small tables: whole) and the audit facts of the dashboard_* views; missing tables are empty.
    One read-only session as ``bi_reader``, the role BI tools use: the pages show nothing it may not read."""
    import psycopg2.extras

    from ingest.warehouse import READER, connect

    conn = connect(url, role=READER)
    tables: dict[str, list[dict]] = {}
    present: set[str] = set()
    fresh: dict[str, Any] = {}
    try:
        conn.set_session(readonly=True, autocommit=True)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            for mart in MARTS:
                if not _regclass(cur, f"marts.{mart}"):
                    tables[mart] = []
                    continue
                present.add(mart)
                cur.execute(f'select * from marts."{mart}"')  # noqa: S608 - name from the MARTS constant
                tables[mart] = [{k: _plain(v) for k, v in row.items()} for row in cur.fetchall()]
            if _regclass(cur, "reference.clusters"):
                cur.execute("select cluster_id, cluster_name from reference.clusters")
                fresh["reference_names"] = {r["cluster_id"]: r["cluster_name"] for r in cur.fetchall()}
            if _regclass(cur, "audit.dashboard_last_run"):
                cur.execute("select run_id, logical_date, finished_at from audit.dashboard_last_run")
                fresh["last_run"] = cur.fetchone()
                cur.execute(
                    "select source, objects, last_loaded, source_updated from audit.dashboard_sources order by source"
                )
                fresh["sources"] = cur.fetchall()
                # Problem codes and counts only: messages (audit.batches.reason, audit.quarantine.message)
                # name rows, columns and values of the files and stay in the warehouse.
                cur.execute(QUARANTINED_SQL)
                fresh["quarantined"] = cur.fetchall()
            for key, (view, query) in AUDIT_FACTS.items():
                if _regclass(cur, view):  # absent: None (not recorded), never an empty list
                    cur.execute(query)
                    fresh[key] = cur.fetchall()
    finally:
        conn.close()
    return MartData(tables, present, fresh)


# ------------------------------------------------------------------------------------------------ row helpers
def latest_per(rows: list[dict], key: tuple[str, ...], order: str = "year") -> list[dict]:
    """The row with the highest ``order`` per ``key`` (rows without ``order`` are skipped)."""
    best: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(r.get(c) for c in key)
        if r.get(order) is None:
            continue
        if k not in best or r[order] > best[k][order]:
            best[k] = r
    return list(best.values())


def status(row: dict) -> str:
    if row.get("is_on_track") is True:
        return "On track"
    if row.get("is_on_track") is False:
        return "Behind"
    return "No target"


def flags(row: dict) -> list[str]:
    return [label for col, label in FLAG_COLUMNS.items() if row.get(col)]


def theme_order(themes) -> list[str]:
    """Known themes in their fixed order, then any other theme alphabetically."""
    return list(THEMES) + sorted(set(themes) - set(THEMES))


def service_list(codes: str | None, labels: dict[str, str]) -> str:
    """'a,b' service codes -> 'Label A, Label B'."""
    if not codes:
        return "–"
    return ", ".join(labels.get(c.strip(), c.strip()) for c in codes.split(",") if c.strip())


def sme_latest(rows: list[dict], cluster_id: str) -> tuple[int | None, list[dict]]:
    """(latest wave, its rows) of one cluster's SME-needs results."""
    mine = [r for r in rows if r["cluster_id"] == cluster_id]
    if not mine:
        return None, []
    wave = max(r["wave"] for r in mine)
    return wave, [r for r in mine if r["wave"] == wave]


def trajectory_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """Long rows per theme: Cluster / EU27 per year, and the Target point."""
    by_theme: dict[str, list[dict]] = defaultdict(list)
    targets: dict[str, dict] = {}
    # EU27 only where it is comparable (intensive indicators have an index vs EU; totals dwarf the cluster).
    comparable = {r.get("indicator_code") for r in rows if r.get("index_vs_eu") is not None}
    for r in sorted(rows, key=lambda r: (r.get("indicator_code") or "", r.get("year") or 0)):
        theme = r.get("theme") or "other"
        unit = r.get("unit")
        name = r.get("indicator_name") or r.get("indicator_code")
        panel = f"{name} ({unit_label(unit)})" if unit_label(unit) else name
        common = {"indicator": name, "panel": panel}
        for series, col in (("Cluster", "value"), ("EU27", "eu27_value")):
            if series == "EU27" and r.get("indicator_code") not in comparable:
                continue
            v = num(r.get(col))
            if v is not None:
                by_theme[theme].append(
                    {
                        **common,
                        "series": series,
                        "year": r["year"],
                        "value": v,
                        "value_text": fmt_unit(v, unit),
                    }
                )
        tv = num(r.get("target_value"))
        if tv is not None and r.get("target_year") is not None:
            targets[f"{theme}|{panel}"] = {
                **common,
                "theme": theme,
                "series": "Target",
                "year": r["target_year"],
                "value": tv,
                "value_text": fmt_unit(tv, unit),
            }
    for t in targets.values():
        theme = t.pop("theme")
        by_theme[theme].append(t)
    return by_theme


def similarity_rows(sim: list[dict], names: dict[str, str]) -> list[dict]:
    """Symmetric cluster x cluster similarity rows per measure (diagonal = 1) for the heatmaps."""
    out: list[dict] = []
    seen: set[str] = set()
    for r in sim:
        a, b = names.get(r["cluster_a"], r["cluster_a"]), names.get(r["cluster_b"], r["cluster_b"])
        seen.update((a, b))
        for col, ncol, label in SIMILARITY_MEASURES:
            v = num(r.get(col))
            if v is None:
                continue
            out.append({"a": a, "b": b, "measure": label, "similarity": v, "n": r.get(ncol)})
            out.append({"a": b, "b": a, "measure": label, "similarity": v, "n": r.get(ncol)})
    for name in seen:
        for _, _, label in SIMILARITY_MEASURES:
            out.append({"a": name, "b": name, "measure": label, "similarity": 1.0, "n": None})
    return out
