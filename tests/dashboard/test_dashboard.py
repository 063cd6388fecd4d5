"""The static dashboard, rendered in a real headless Chromium (DevTools protocol, no Selenium/Playwright).

Data: a throwaway migrated database (``fresh_db``) whose ``marts.*`` tables are created from the dbt mart
contracts (``dbt_project/models/marts/*.yml``: same columns and types) and filled with a small hand-made,
deterministic set of rows for the five SS4GL clusters: seconds instead of a dbt build. Text columns carry
HTML/script payloads to prove everything from the database is escaped.

Artifacts: the overview screenshot is written to the pytest tmp dir and copied to
``$SS4GL_ARTIFACTS/dashboard-overview.png`` (default ``<repo>/.state/artifacts``, git-ignored).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path

import yaml

from ingest.dashboard.build import build_dashboard, fmt_unit, page_name

REPO = Path(__file__).resolve().parents[2]
MART_DIR = REPO / "dbt_project" / "models" / "marts"

CLUSTERS = {
    "indescat": ("INDESCAT - Catalan Sports Cluster", "ES", "ES51"),
    "cluster_montagne": ("Cluster Montagne", "FR", "FRK2"),
    "sports_technology": ("Cluster Sports & Technology", "NL", "NL34,NL41,NL42"),
    "mse_cluster": ("MSE Cluster (Hungarian Sport Cluster)", "HU", "HU32"),
    "epsi": ("EPSI - European Platform for Sport Innovation", "BE", "EU27_2020"),
}
XSS = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "</script><script>window.__xss=2</script>"
SERVICES = {
    "funding_access": "Access to funding / EU calls",
    "digitalisation": "Digitalisation support " + XSS,
    "b2b_matchmaking": "B2B matchmaking & networking events",
    "sustainability": "Sustainability / low-carbon / circular support",
    "internationalisation": "Internationalisation",
}
INDICATORS = [
    # code, name, theme, unit, direction, base value, yearly step, aggregation-like (has EU index)
    (
        "SME_ENT_SHARE",
        "Enterprises with 0-249 persons employed (share of all)",
        "sme",
        "PC",
        "higher",
        80,
        0.3,
        True,
    ),
    (
        "DIG_INT_HI",
        "Enterprises with high digital intensity " + XSS_SCRIPT,
        "digital",
        "PC_ENT",
        "higher",
        18,
        0.9,
        True,
    ),
    ("GHG_THS_T", "Greenhouse-gas emissions", "low_carbon", "THS_T", "lower", 30000, -400, False),
    ("POP", "Population on 1 January", "regional_context", "persons", "higher", 5_000_000, 20_000, False),
    (
        "GDP_MEUR",
        "GDP at current market prices",
        "regional_context",
        "MIO_EUR",
        "higher",
        150_000,
        3_000,
        False,
    ),
    ("MEMBERS_TOTAL", "Cluster members (total)", "cluster_kpi", "NR", "higher", 60, 5, False),
    (
        "SME_DIGITAL_MATURITY",
        "Mean self-assessed digital maturity",
        "member_outcome",
        "SCORE",
        "higher",
        2.6,
        0.1,
        False,
    ),
]
YEARS = range(2019, 2026)
CHROMIUM_TIMEOUT = 60


# ------------------------------------------------------------------------------------------------ data
def contracts() -> dict[str, list[tuple[str, str]]]:
    """mart -> [(column, data_type)] from the enforced dbt contracts."""
    out = {}
    for path in sorted(MART_DIR.glob("mart_*.yml")):
        for model in yaml.safe_load(path.read_text())["models"]:
            out[model["name"]] = [(c["name"], c["data_type"]) for c in model["columns"]]
    return out


def sample_marts(cluster_ids: list[str]) -> dict[str, list[dict]]:
    """Small deterministic mart rows for the given clusters (any number)."""
    marts: dict[str, list[dict]] = {m: [] for m in contracts()}
    for ci, cid in enumerate(cluster_ids):
        name, country, geo = CLUSTERS.get(cid, (cid.replace("_", " ").title(), "XX", "XX1"))
        for ii, (code, iname, theme, unit, direction, base, step, intensive) in enumerate(INDICATORS):
            has_target = (ci + ii) % 3 != 0
            baseline_value = base * (1 + 0.05 * ci)
            target_value = baseline_value + 5 * step * (1 if ci % 2 == 0 else 2)
            for year in YEARS:
                value = baseline_value + step * (year - 2021) * (1 + 0.1 * ci)
                eu = base * 1.02 + step * (year - 2021) if intensive else base * 40
                progress = (value - baseline_value) / (target_value - baseline_value) if has_target else None
                elapsed = min(max((year - 2021) / 6, 0), 1)
                marts["mart_partnership_indicators"].append(
                    {
                        "cluster_id": cid,
                        "indicator_code": code,
                        "year": year,
                        "indicator_name": iname,
                        "theme": theme,
                        "unit": unit,
                        "direction": direction,
                        "source_type": "eurostat" if theme not in ("cluster_kpi", "member_outcome") else "survey",
                        "geo_scope": "regions" if cid != "epsi" else "eu",
                        "geo_codes": geo,
                        "value": round(value, 4),
                        "national_value": round(value * 0.97, 4) if cid != "epsi" else None,
                        "eu27_value": round(eu, 4),
                        "index_vs_eu": round(100 * value / eu, 2) if intensive else None,
                        "baseline_year": 2021 if has_target else None,
                        "baseline_value": baseline_value if has_target else None,
                        "target_year": 2027 if has_target else None,
                        "target_value": target_value if has_target else None,
                        "progress": round(progress, 6) if progress is not None else None,
                        "elapsed_share": elapsed if has_target else None,
                        "is_on_track": (progress >= elapsed) if has_target else None,
                        "is_provisional": year == 2025 and ii % 2 == 0,
                        "is_estimated": year == 2025 and ii == 3,
                        "is_confidential": False,
                        "is_break": year == 2019 and ii == 1,
                        "batch_ids": "b1",
                    }
                )
        for year in (2024, 2025):
            members = 40 + 20 * ci + (year - 2024) * 3
            marts["mart_cluster_kpis"].append(
                {
                    "cluster_id": cid,
                    "year": year,
                    "cluster_name": name,
                    "members_total": members,
                    "members_sme": int(members * 0.8),
                    "sme_share_of_members": 0.8,
                    "member_growth": 0.05,
                    "member_retention": 0.93,
                    "member_employees": 1200 + 100 * ci,
                    "member_turnover_eur": 250_000_000 + 1e7 * ci,
                    "innovation_turnover_eur": 5_200_000,
                    "staff_fte": 3.5,
                    "events": 12,
                    "b2b_meetings": 150,
                    "matchmaking_contacts": 300,
                    "joint_projects_submitted": 10,
                    "joint_projects_won": 3,
                    "labels": "ESCA Silver " + XSS,
                    "sme_survey_respondents": 50 + ci,
                    "sme_mean_digital_maturity": 3.1,
                    "sme_low_carbon_share_pct": 31.4,
                }
            )
        for si, (scode, slabel) in enumerate(SERVICES.items()):
            for wave in (2024, 2025):
                imp = 3.2 + 0.3 * si + 0.05 * ci
                sat = 3.6 - 0.2 * si + 0.1 * ci
                marts["mart_sme_needs"].append(
                    {
                        "cluster_id": cid,
                        "service_code": scode,
                        "wave": wave,
                        "service_label": slabel,
                        "n_respondents": 30 + si,
                        "mean_importance": round(imp, 3),
                        "mean_satisfaction": round(sat, 3),
                        "gap": round(imp - sat, 3),
                        "partnership_gap": round(0.6 * si - 0.3, 3),
                        "rank_in_cluster": len(SERVICES) - si,
                        "cluster_wave_respondents": 50 + ci,
                        "interest_share_technology": 0.5,
                        "interest_share_health": 0.25,
                    }
                )
    for i, a in enumerate(sorted(cluster_ids)):
        for j, b in enumerate(sorted(cluster_ids)):
            if a < b:
                marts["mart_cluster_similarity"].append(
                    {
                        "cluster_a": a,
                        "cluster_b": b,
                        "indicator_similarity": round(((i * 7 + j * 3) % 11) / 5.5 - 1, 4),
                        "n_indicators_compared": 6,
                        "needs_similarity": round(0.2 + 0.1 * ((i + j) % 7), 4),
                        "n_services_compared": 5,
                        "top_shared_needs": "digitalisation,sustainability",
                        "a_strengths_for_b_weaknesses": "digital",
                        "b_strengths_for_a_weaknesses": "sustainability " + XSS,
                        "synergy_candidates": "joint service: digitalisation",
                    }
                )
                marts["mart_matchmaking"].append(
                    {
                        "offer_cluster_id": a,
                        "offer_respondent_pid": f"p{i:02d}" + "f" * 30,
                        "need_cluster_id": b,
                        "need_respondent_pid": f"n{j:02d}",
                        "topic_code": "digitalisation",
                        "topic_label": SERVICES["digitalisation"],
                        "topic_kind": "services",
                        "offer_wave": 2025,
                        "need_wave": 2025,
                        "n_shared_interests": 1,
                        "shared_interests": "health",
                        "is_need_priority": True,
                        "match_score": 1.75,
                        "match_rank": 1,
                        "explanation": "offers digitalisation support, needed as a top-3 priority " + XSS_SCRIPT,
                    }
                )
    marts["mart_eurostat_revisions"].append(
        {
            "dataset": "nama_10r_2gdp",
            "series_key": "A.MIO_EUR",
            "geo_code": "ES51",
            "time_period": "2023",
            "version_number": 2,
            "previous_value": 250000,
            "value": 252000,
            "revision_delta": 2000,
            "revision_pct": 0.8,
            "previous_obs_status": "p",
            "obs_status": None,
            "is_current": True,
        }
    )
    return marts


def create_marts(url: str, rows: dict[str, list[dict]] | None) -> None:
    """Create every marts.* table with its contract's columns; insert ``rows`` (None: tables only)."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("create schema if not exists marts")
            for mart, cols in contracts().items():
                cur.execute(
                    sql.SQL("create table marts.{} ({})").format(
                        sql.Identifier(mart),
                        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in cols),
                    )
                )
                names = [c for c, _ in cols]
                for row in (rows or {}).get(mart, []):
                    unknown = set(row) - set(names)
                    assert not unknown, f"{mart}: columns not in the contract: {unknown}"
                    keys = list(row)
                    cur.execute(
                        sql.SQL("insert into marts.{} ({}) values ({})").format(
                            sql.Identifier(mart),
                            sql.SQL(", ").join(map(sql.Identifier, keys)),
                            sql.SQL(", ").join(sql.Placeholder() * len(keys)),
                        ),
                        [row[k] for k in keys],
                    )
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------ fixtures
# browser: one headless Chromium per module (tests/dashboard/conftest.py)
def artifacts_dir() -> Path:
    return Path(os.environ.get("SS4GL_ARTIFACTS") or REPO / ".state" / "artifacts")


XSS_PROBE = {"xss": "String(window.__xss)", "images": "document.images.length"}


def assert_page_ok(report, min_charts: int) -> None:
    assert len(report.charts) >= min_charts, report.charts
    assert report.problems() == [], "\n".join(report.problems())
    assert report.values.get("xss") == "undefined", "text from the database was executed"
    assert report.values.get("images") == 0, "text from the database became markup"


# ------------------------------------------------------------------------------------------------ tests
def test_format_by_unit():
    assert fmt_unit(45.123, "PC") == "45.1 %"
    assert fmt_unit(19.2, "PC_ENT") == "19.2 % of enterprises"
    assert fmt_unit(0.782, "SHARE") == "78.2 %"
    assert fmt_unit(5_200_000, "EUR") == "EUR 5.2 M"
    assert fmt_unit(150_000, "MIO_EUR") == "EUR 150,000 M"
    assert fmt_unit(5_000_000, "persons") == "5,000,000 persons"
    assert fmt_unit(2784, "NR") == "2,784"
    assert fmt_unit(None, "PC") == "–"
    assert page_name("indescat") == "cluster-indescat.html"
    assert re.fullmatch(r"cluster-a_b-[0-9a-f]{8}\.html", page_name("a/../b"))


def test_every_chart_spec_is_valid_vega_lite(fresh_db, tmp_path, monkeypatch):
    """A nightly builds the specs without the JSON-schema check (charts.VALIDATE_SPECS); here every chart of every
    page is built with it: an invalid spec raises."""
    from ingest.dashboard import charts

    create_marts(fresh_db, sample_marts(list(CLUSTERS)))
    checked: list[bool] = []
    monkeypatch.setattr(charts, "VALIDATE_SPECS", True)
    add = charts.Charts.add

    def add_checked(self, chart, title):
        checked.append(hasattr(chart, "to_dict"))
        return add(self, chart, title)

    monkeypatch.setattr(charts.Charts, "add", add_checked)
    build_dashboard(fresh_db, tmp_path / "dashboard")
    assert len(checked) >= 10 and all(checked)


def test_dashboard_five_clusters_in_chromium(fresh_db, tmp_path, browser):
    create_marts(fresh_db, sample_marts(list(CLUSTERS)))
    out = tmp_path / "dashboard"
    index = build_dashboard(fresh_db, out)
    assert index == out / "index.html"
    assert (out / "assets" / "vega-bundle.js").stat().st_size > 100_000
    pages = sorted(p.name for p in out.glob("cluster-*.html"))
    assert pages == sorted(page_name(c) for c in CLUSTERS)

    html = index.read_text()
    assert "http://" not in html and "https://" not in html.replace("https://vega.github.io/schema", "")
    assert XSS not in html and "&lt;img src=x" in html
    assert XSS_SCRIPT not in html
    for cid, (name, _, _) in CLUSTERS.items():
        assert f'href="{page_name(cid)}"' in html
        assert name.replace("&", "&amp;") in html

    shot = tmp_path / "overview.png"
    report = browser.load(index, screenshot=shot, timeout=CHROMIUM_TIMEOUT, extra=XSS_PROBE)
    assert_page_ok(report, min_charts=3)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = artifacts_dir() / "dashboard-overview.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, target)

    for cid in CLUSTERS:
        page = out / page_name(cid)
        text = page.read_text()
        assert 'class="card' in text and "Progress" in text and "EU index" in text
        # one trajectory chart per theme + SME gap + similarity
        report = browser.load(page, timeout=CHROMIUM_TIMEOUT, extra=XSS_PROBE)
        assert_page_ok(report, min_charts=len({i[2] for i in INDICATORS}) + 2)


def test_dashboard_any_number_of_clusters_and_rebuild(fresh_db, tmp_path, browser):
    ids = ["indescat", "new_cluster_x"]
    create_marts(fresh_db, sample_marts(ids))
    out = tmp_path / "dashboard"
    (out).mkdir()
    (out / "cluster-gone.html").write_text("stale page of a removed cluster")
    index = build_dashboard(fresh_db, out)
    assert sorted(p.name for p in out.glob("cluster-*.html")) == sorted(page_name(c) for c in ids)
    report = browser.load(out / page_name("new_cluster_x"), timeout=CHROMIUM_TIMEOUT, extra=XSS_PROBE)
    assert_page_ok(report, min_charts=3)
    assert "New Cluster X" in index.read_text()


def test_dashboard_empty_warehouse(fresh_db, tmp_path, browser):
    out = tmp_path / "no-marts"
    index = build_dashboard(fresh_db, out)  # migrated database, no marts schema at all
    html = index.read_text()
    assert "No data yet" in html and "not built yet" in html
    assert list(out.glob("cluster-*.html")) == []
    report = browser.load(index, timeout=CHROMIUM_TIMEOUT, extra=XSS_PROBE)
    assert report.charts == [] and report.problems() == []

    create_marts(fresh_db, None)  # marts built but empty
    index = build_dashboard(fresh_db, tmp_path / "empty-marts")
    html = index.read_text()
    assert "No data yet" in html and "not built yet" not in html
    report = browser.load(index, timeout=CHROMIUM_TIMEOUT)
    assert report.problems() == []


def test_cli_dashboard_build(fresh_db, tmp_path, capsys):
    from ingest.dashboard.commands import register

    parser = argparse.ArgumentParser(prog="ss4gl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dashboard", "build", "-o", str(tmp_path / "d")])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "d" / "index.html")

    args = parser.parse_args(["dashboard", "build"])
    assert args.output is None  # default: <state dir>/dashboard


def test_quarantined_batches_show_codes_and_counts_never_messages(fresh_db, tmp_path):
    """The overview lists quarantined/failed batches by problem code and count; reasons and problem messages
    (row, column, what was found) stay in the warehouse."""
    import psycopg2

    secret = "Jan Müller jan@example.invalid"
    conn = psycopg2.connect(fresh_db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "insert into audit.batches (batch_id, source, object, sha256, status, reason) values"
                " ('b1', 'surveys', 'epsi/sme_needs/bad.csv', '{aa}', 'quarantined', %s),"
                " ('b2', 'eurostat', 'nama_10r_3gdp', '{bb}', 'failed', %s)",
                (f"bad.csv: row 2, column NUTS3: unknown nuts3 code; found {secret!r}", f"boom {secret}"),
            )
            for code, severity in (
                ("unknown_nuts3", "error"),
                ("unknown_nuts3", "error"),
                ("missing_value", "error"),
                ("unknown_column", "warning"),
            ):
                cur.execute(
                    "insert into audit.quarantine (batch_id, source, object, code, severity, message, found)"
                    " values ('b1', 'surveys', 'epsi/sme_needs/bad.csv', %s, %s, %s, %s)",
                    (code, severity, f"bad.csv: row 2: {secret}", secret),
                )
    finally:
        conn.close()
    create_marts(fresh_db, None)
    index = build_dashboard(fresh_db, tmp_path / "site")
    html = index.read_text(encoding="utf-8")
    quality = html[html.index('<section id="quality">') :]
    quality = quality[: quality.index("</section>")]
    assert "Quarantined or failed batches (latest 2)" in quality
    assert "epsi/sme_needs/bad.csv" in quality and "missing_value, unknown_nuts3" in quality
    assert "unknown_column" not in quality  # warnings are not why a batch was quarantined
    assert "<td class=num>3</td>" in quality.replace('"', "")
    assert "failed" in quality and "nama_10r_3gdp" in quality
    for page in (tmp_path / "site").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "Müller" not in text and "jan@example" not in text and "row 2" not in text and "boom" not in text


def test_a_target_whose_baseline_disagrees_with_the_data_carries_a_note():
    from ingest.dashboard.build import indicator_card

    row = {
        "indicator_code": "GDP_EUR_HAB",
        "indicator_name": "GDP per inhabitant",
        "value": 47000,
        "unit": "EUR_HAB",
        "year": 2023,
        "target_value": 50000,
        "target_year": 2025,
        "baseline_value": 40000,
        "baseline_year": 2020,
        "progress": 0.7,
        "elapsed_share": 0.6,
        "is_on_track": True,
    }
    assert "baseline-check" not in indicator_card(row)
    flagged = indicator_card({**row, "baseline_check": "baseline_differs_from_observed"})
    assert "baseline-check" in flagged and "differs from the value observed" in flagged
