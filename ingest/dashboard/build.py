"""Static HTML strategy dashboard from the marts: ``index.html`` (overview) + ``cluster-<id>.html``.

Charts are Vega-Lite specs made with Altair and drawn in the browser by vega-embed. The Vega, Vega-Lite and
vega-embed JavaScript comes from the ``vl-convert-python`` wheel (``vl_convert.javascript_bundle()``) and is
written once to ``<out_dir>/assets/vega-bundle.js``: the pages load nothing from the network, so the folder
can be opened from disk, copied to a file share or served by any static web server.

Every text that comes from the warehouse is HTML-escaped; chart specs are embedded as JSON in
``<script type="application/json">`` blocks with ``<``, ``>`` and ``&`` escaped. Missing marts (nothing built
yet) or empty marts give "no data yet" sections, never an error. Clusters are the ones found in the marts.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import hashlib
import html
import json
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ASSET_DIR = "assets"
BUNDLE_NAME = "vega-bundle.js"

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

STATUS_COLOURS = {"On track": "#1a7f37", "Behind": "#c62828", "No target": "#8a8f98"}
MATCH_ROWS = 15


# ------------------------------------------------------------------------------------------------ formatting
def esc(value: Any) -> str:
    """HTML-escape any value (None -> empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _fmt_number(value: float, decimals: int | None = None) -> str:
    if decimals is None:
        a = abs(value)
        decimals = 0 if a >= 1000 or value == int(value) else (1 if a >= 10 else 2)
    return f"{value:,.{decimals}f}"


def _fmt_money(value: float) -> str:
    a = abs(value)
    if a >= 1e9:
        return f"EUR {value / 1e9:,.2f} bn"
    if a >= 1e6:
        return f"EUR {value / 1e6:,.1f} M"
    return f"EUR {value:,.0f}"


PCT_SUFFIX = {"PC_GDP": " of GDP", "PC_EMP": " of employment", "PC_ENT": " of enterprises"}


def fmt_unit(value: Any, unit: str | None) -> str:
    """A value formatted for its unit code (indicators seed units, plus EUR / persons / share / score)."""
    v = _num(value)
    if v is None:
        return "–"
    u = (unit or "").strip()
    up = u.upper()
    if up == "SHARE":  # a 0-1 ratio
        return f"{v * 100:,.1f} %"
    if up == "PC" or up.startswith("PC_"):
        return f"{v:,.1f} %{PCT_SUFFIX.get(up, '')}"
    if up in ("EUR",):
        return _fmt_money(v)
    if up == "MIO_EUR":
        return f"EUR {v:,.0f} M" if abs(v) >= 100 else f"EUR {v:,.1f} M"
    if up == "EUR_HAB":
        return f"EUR {v:,.0f} per inhabitant"
    if up.startswith("PPS") and up.endswith("_HAB"):
        return f"{v:,.0f} PPS per inhabitant"
    if up == "PERSONS":
        return f"{v:,.0f} persons"
    if up in ("NR", "COUNT"):
        return _fmt_number(v, 0 if v == int(v) else 1)
    if up == "THS_T":
        return f"{v:,.0f} thousand t"
    if up == "SCORE":
        return f"{v:,.2f}"
    if up == "FTE":
        return f"{v:,.1f} FTE"
    return f"{_fmt_number(v)} {u}".strip()


def fmt_share(value: Any) -> str:
    return fmt_unit(value, "SHARE")


def fmt_index(value: Any) -> str:
    v = _num(value)
    return "–" if v is None else f"{v:,.1f}"


def unit_label(unit: str | None) -> str:
    """Axis title for a unit code."""
    up = (unit or "").upper()
    labels = {
        "PC": "%",
        "PC_GDP": "% of GDP",
        "PC_EMP": "% of employment",
        "PC_ENT": "% of enterprises",
        "MIO_EUR": "EUR million",
        "EUR_HAB": "EUR per inhabitant",
        "PPS_EU27_2020_HAB": "PPS per inhabitant",
        "PERSONS": "persons",
        "NR": "number",
        "THS_T": "thousand tonnes",
        "SCORE": "score",
        "EUR": "EUR",
    }
    return labels.get(up, unit or "")


def _plain(value: Any) -> Any:
    """JSON-friendly value (Decimal -> float, dates -> ISO)."""
    if isinstance(value, decimal.Decimal):
        return _num(value)
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _fmt_ts(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def page_name(cluster_id: str) -> str:
    """File name of a cluster page; ids that are not plain slugs get a hash so names stay safe and unique."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,80}", cluster_id):
        return f"cluster-{cluster_id}.html"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", cluster_id)[:40].strip("_") or "cluster"
    return f"cluster-{slug}-{hashlib.sha256(cluster_id.encode()).hexdigest()[:8]}.html"


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
        """Clusters found in the marts -> display name (from the marts / reference seed, else the id)."""
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


# The dashboard reads as bi_reader: marts, reference.clusters and these views (migration 0007), nothing else.
QUARANTINED_SQL = "select source, object, status, problems, codes, updated_at from audit.dashboard_quarantined"


# mart_partnership_indicators.baseline_check -> the note under a target (progress against it says little).
BASELINE_NOTES = {
    "baseline_year_without_data": "No data in the baseline year: the baseline cannot be checked.",
    "baseline_differs_from_observed": "The baseline differs from the value observed in its year (more than 5 %).",
}


def _regclass(cur, name: str) -> bool:
    cur.execute("select to_regclass(%s) is not null as present", (name,))
    row = cur.fetchone()
    return bool(row["present"] if isinstance(row, dict) else row[0])


def read_marts(url: str) -> MartData:
    """Read every mart (small tables: whole) and the audit freshness facts; missing tables are empty."""
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
                cur.execute("select source, objects, last_loaded, source_updated from audit.dashboard_sources"
                            " order by source")
                fresh["sources"] = cur.fetchall()
                # Problem codes and counts only: messages (audit.batches.reason, audit.quarantine.message)
                # name rows, columns and values of the files and stay in the warehouse.
                cur.execute(QUARANTINED_SQL)
                fresh["quarantined"] = cur.fetchall()
    finally:
        conn.close()
    return MartData(tables, present, fresh)


# ------------------------------------------------------------------------------------------------ charts
class Charts:
    """Collects the Vega-Lite specs of one page; each gets a container div and a JSON script block."""

    def __init__(self) -> None:
        self.specs: list[tuple[str, dict]] = []

    def add(self, chart: Any, title: str) -> str:
        spec = chart.to_dict() if hasattr(chart, "to_dict") else chart
        chart_id = f"chart-{len(self.specs) + 1}"
        self.specs.append((chart_id, spec))
        return (
            f'<div class="chart" id="{chart_id}" data-spec="{chart_id}-spec" role="img" '
            f'aria-label="{esc(title)}"><p class="muted">Loading chart…</p></div>'
        )

    def scripts(self) -> str:
        blocks = [
            f'<script type="application/json" id="{cid}-spec">{_script_json(spec)}</script>' for cid, spec in self.specs
        ]
        return "\n".join(blocks)


def _script_json(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _alt():
    import altair as alt

    return alt


def _base_config(chart):
    return chart.configure(font="system-ui, -apple-system, Segoe UI, Roboto, sans-serif").configure_view(stroke=None)


def chart_progress_matrix(rows: list[dict]):
    """Clusters x indicators with a target: colour = on track / behind, text = progress."""
    alt = _alt()
    data = alt.Data(values=rows)
    base = alt.Chart(data).encode(
        x=alt.X("indicator:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=220)),
        y=alt.Y("cluster:N", title=None, axis=alt.Axis(labelLimit=260)),
    )
    rect = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color(
            "status:N",
            title="Status",
            scale=alt.Scale(domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values())),
        ),
        tooltip=[
            alt.Tooltip("cluster:N", title="Cluster"),
            alt.Tooltip("indicator:N", title="Indicator"),
            alt.Tooltip("year:O", title="Year"),
            alt.Tooltip("value_text:N", title="Value"),
            alt.Tooltip("target_text:N", title="Target"),
            alt.Tooltip("progress_text:N", title="Progress"),
            alt.Tooltip("elapsed_text:N", title="Time elapsed"),
        ],
    )
    text = base.mark_text(fontSize=11, color="white").encode(text="progress_text:N")
    return _base_config((rect + text).properties(width=alt.Step(70), height=alt.Step(34)))


def chart_trajectories(rows: list[dict], theme_label: str):
    """Value over time per indicator (small multiples, own y scale), with EU27 and the strategy target."""
    alt = _alt()
    data = alt.Data(values=rows)
    colours = alt.Scale(domain=["Cluster", "EU27", "Target"], range=["#1f5fa8", "#9aa5b1", "#e07b00"])
    base = alt.Chart(data).encode(
        x=alt.X("year:O", title=None, axis=alt.Axis(labelAngle=0, labelOverlap="parity", labelSeparation=6)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, scale=colours, legend=alt.Legend(orient="top")),
        tooltip=[
            alt.Tooltip("indicator:N", title="Indicator"),
            alt.Tooltip("series:N", title="Series"),
            alt.Tooltip("year:O", title="Year"),
            alt.Tooltip("value_text:N", title="Value"),
        ],
    )
    chart = (
        base.mark_line(point=alt.OverlayMarkDef(filled=True, size=45))
        .properties(width=230, height=150)
        .facet(
            facet=alt.Facet("panel:N", title=None, header=alt.Header(labelLimit=300, labelFontWeight="bold")),
            columns=3,
        )
        .resolve_scale(y="independent", x="independent")
        .properties(title=theme_label)
    )
    return _base_config(chart)


def chart_sme_gap(rows: list[dict], title: str):
    """Importance vs satisfaction per service (dumbbell), sorted by gap."""
    alt = _alt()
    data = alt.Data(values=rows)
    order = [r["service"] for r in sorted(rows, key=lambda r: -(r["gap"] if r["gap"] is not None else -99))]
    y = alt.Y("service:N", title=None, sort=order, axis=alt.Axis(labelLimit=280))
    tooltip = [
        alt.Tooltip("service:N", title="Service"),
        alt.Tooltip("importance:Q", title="Importance (1-5)", format=".2f"),
        alt.Tooltip("satisfaction:Q", title="Satisfaction (1-5)", format=".2f"),
        alt.Tooltip("gap:Q", title="Gap", format="+.2f"),
        alt.Tooltip("respondents:Q", title="Respondents"),
    ]
    rule = (
        alt.Chart(data)
        .mark_rule(strokeWidth=3, color="#c9d1d9")
        .encode(
            y=y,
            x=alt.X("satisfaction:Q", scale=alt.Scale(domain=[1, 5])),
            x2="importance:Q",
            tooltip=tooltip,
        )
    )
    points = (
        alt.Chart(data)
        .transform_fold(["importance", "satisfaction"], as_=["measure", "score"])
        .mark_point(filled=True, size=110, opacity=1)
        .encode(
            y=y,
            x=alt.X("score:Q", title="Mean score (1 = low, 5 = high)", scale=alt.Scale(domain=[1, 5])),
            color=alt.Color(
                "measure:N",
                title=None,
                scale=alt.Scale(domain=["importance", "satisfaction"], range=["#c62828", "#1f5fa8"]),
                legend=alt.Legend(
                    orient="top", labelExpr="datum.label == 'importance' ? 'Importance' : 'Satisfaction'"
                ),
            ),
            tooltip=tooltip,
        )
    )
    gap_text = (
        alt.Chart(data)
        .mark_text(align="left", dx=6, fontSize=11, color="#444")
        .encode(
            y=alt.Y("service:N", sort=order, axis=None),
            x=alt.value(0),
            text="gap_text:N",
        )
    )
    left = (rule + points).properties(width=420, height=alt.Step(22))
    right = gap_text.properties(width=70, height=alt.Step(22), title="Gap")
    return _base_config(alt.hconcat(left, right, spacing=4).properties(title=title))


def chart_partnership_needs(rows: list[dict]):
    """Pooled partnership gap per service (bars) with each cluster's own gap (points)."""
    alt = _alt()
    data = alt.Data(values=rows)
    pooled = {r["service"]: r["gap"] for r in rows if r["kind"] == "Partnership"}
    order = sorted({r["service"] for r in rows}, key=lambda s: (-pooled.get(s, -99), s))
    bars = (
        alt.Chart(data)
        .transform_filter("datum.kind == 'Partnership'")
        .mark_bar(color="#d9e2ec")
        .encode(
            y=alt.Y("service:N", title=None, sort=order, axis=alt.Axis(labelLimit=280)),
            x=alt.X("gap:Q", title="Gap = importance − satisfaction"),
            tooltip=[
                alt.Tooltip("service:N", title="Service"),
                alt.Tooltip("gap:Q", title="Partnership gap", format="+.2f"),
            ],
        )
    )
    points = (
        alt.Chart(data)
        .transform_filter("datum.kind == 'Cluster'")
        .mark_point(filled=True, size=70)
        .encode(
            y=alt.Y("service:N", sort=order),
            x="gap:Q",
            color=alt.Color("cluster:N", title="Cluster", legend=alt.Legend(orient="right", labelLimit=260)),
            tooltip=[
                alt.Tooltip("cluster:N", title="Cluster"),
                alt.Tooltip("service:N", title="Service"),
                alt.Tooltip("gap:Q", title="Gap", format="+.2f"),
            ],
        )
    )
    return _base_config(alt.layer(bars, points).properties(width=460, height=alt.Step(22)))


def chart_similarity(rows: list[dict]):
    """Cluster x cluster heatmaps of indicator-profile and SME-needs cosine similarity."""
    alt = _alt()
    data = alt.Data(values=rows)
    base = alt.Chart().encode(
        x=alt.X("b:N", title=None, axis=alt.Axis(labelAngle=-35, labelLimit=200)),
        y=alt.Y("a:N", title=None, axis=alt.Axis(labelLimit=260)),
    )
    rect = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "similarity:Q",
            title="Cosine similarity",
            scale=alt.Scale(domain=[-1, 1], scheme="redblue"),
        ),
        tooltip=[
            alt.Tooltip("a:N", title="Cluster"),
            alt.Tooltip("b:N", title="Compared with"),
            alt.Tooltip("measure:N", title="Measure"),
            alt.Tooltip("similarity:Q", title="Similarity", format=".2f"),
            alt.Tooltip("n:Q", title="Items compared"),
        ],
    )
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("similarity:Q", format=".2f"),
        color=alt.condition("abs(datum.similarity) > 0.6", alt.value("white"), alt.value("#222")),
    )
    chart = (
        alt.layer(rect, text, data=data)
        .properties(width=alt.Step(56), height=alt.Step(36))
        .facet(column=alt.Column("measure:N", title=None, header=alt.Header(labelFontWeight="bold")))
    )
    return _base_config(chart)


def chart_similarity_bars(rows: list[dict]):
    alt = _alt()
    data = alt.Data(values=rows)
    return _base_config(
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("other:N", title=None, axis=alt.Axis(labelLimit=260)),
            yOffset="measure:N",
            x=alt.X("similarity:Q", title="Cosine similarity", scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("other:N", title="Cluster"),
                alt.Tooltip("measure:N", title="Measure"),
                alt.Tooltip("similarity:Q", title="Similarity", format=".2f"),
            ],
        )
        .properties(width=420, height=alt.Step(14))
    )


# ------------------------------------------------------------------------------------------------ page parts
CSS = """
:root{--fg:#1c2430;--muted:#5b6675;--line:#e3e8ee;--bg:#f6f8fa;--ok:#1a7f37;--bad:#c62828;--na:#8a8f98;
--accent:#1f5fa8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header.top{background:#13315c;color:#fff;padding:18px 28px}
header.top a{color:#cfe0ff}
header.top h1{margin:0 0 4px;font-size:22px}
header.top p{margin:0;color:#d6e2f5}
nav.clusters{display:flex;flex-wrap:wrap;gap:6px;padding:10px 28px;background:#0f2747}
nav.clusters a{color:#fff;text-decoration:none;padding:4px 10px;border-radius:12px;background:#24497c;
font-size:13px}
nav.clusters a.current{background:#fff;color:#13315c}
main{padding:18px 28px 40px;max-width:1500px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 18px}
section h2{margin:0 0 10px;font-size:18px}
section h3{margin:16px 0 8px;font-size:15px}
.muted{color:var(--muted)}
.nodata{color:var(--muted);font-style:italic;padding:8px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.card{border:1px solid var(--line);border-left:5px solid var(--na);border-radius:6px;padding:10px 12px;
background:#fff}
.card.ok{border-left-color:var(--ok)}.card.bad{border-left-color:var(--bad)}
.card h4{margin:0 0 4px;font-size:13px;font-weight:600}
.card .value{font-size:20px;font-weight:600}
.card .meta{font-size:12px;color:var(--muted)}
.card a{color:var(--accent)}
.badge{display:inline-block;font-size:11px;padding:1px 7px;border-radius:10px;background:#eef1f4;color:#444;
margin:2px 2px 0 0}
.badge.ok{background:#dcf5e3;color:var(--ok)}.badge.bad{background:#fde2e2;color:var(--bad)}
.badge.flag{background:#fff4d6;color:#7a5300}
.bar{height:8px;background:#eef1f4;border-radius:4px;overflow:hidden;margin:6px 0 2px;position:relative}
.bar span{display:block;height:100%;background:var(--na)}
.ok .bar span{background:var(--ok)}.bad .bar span{background:var(--bad)}
.bar i{position:absolute;top:-2px;bottom:-2px;width:2px;background:#222}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f1f4f7;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{margin:8px 0 14px;overflow-x:auto;min-height:40px}
.chart.failed{color:var(--bad)}
footer{color:var(--muted);font-size:12px;padding:0 28px 30px}
"""

EMBED_JS = """
(function () {
  var charts = document.querySelectorAll('.chart[data-spec]');
  if (typeof vegaEmbed !== 'function') {
    charts.forEach(function (el) {
      el.className += ' failed';
      el.setAttribute('data-rendered', 'error');
      el.textContent = 'Charts need assets/vega-bundle.js next to this page.';
    });
    return;
  }
  charts.forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute('data-spec')).textContent);
    vegaEmbed(el, spec, {renderer: 'svg', actions: false}).then(function () {
      el.setAttribute('data-rendered', 'true');
    }).catch(function (err) {
      el.className += ' failed';
      el.setAttribute('data-rendered', 'error');
      el.textContent = 'This chart could not be drawn: ' + err;
      console.error(err);
    });
  });
})();
"""


def _page(title: str, subtitle: str, nav: str, body: str, charts: Charts, generated: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header class="top"><h1>{esc(title)}</h1><p>{subtitle}</p></header>
{nav}
<main>
{body}
</main>
<footer>Generated {esc(generated)} by <code>ss4gl dashboard build</code> from the warehouse marts.
Open the folder from disk or any static web server: the pages load nothing from the network.</footer>
{charts.scripts()}
<script src="{ASSET_DIR}/{BUNDLE_NAME}"></script>
<script>{EMBED_JS}</script>
</body>
</html>
"""


def _nav(names: dict[str, str], current: str | None) -> str:
    cls = ' class="current"' if current is None else ""
    links = [f'<a href="index.html"{cls}>Partnership overview</a>']
    for cid, name in names.items():
        cls = ' class="current"' if cid == current else ""
        links.append(f'<a href="{esc(page_name(cid))}"{cls}>{esc(name)}</a>')
    return '<nav class="clusters" aria-label="Clusters">' + "".join(links) + "</nav>"


def _nodata(text: str = "No data yet.") -> str:
    return f'<p class="nodata">{esc(text)}</p>'


def _table(headers: list[str], rows: Iterable[list[str]], numeric: Iterable[int] = ()) -> str:
    """A table from pre-escaped cell HTML."""
    numeric = set(numeric)
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _latest_per(rows: list[dict], key: tuple[str, ...], order: str = "year") -> list[dict]:
    best: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(r.get(c) for c in key)
        if r.get(order) is None:
            continue
        if k not in best or r[order] > best[k][order]:
            best[k] = r
    return list(best.values())


def _status(row: dict) -> str:
    if row.get("is_on_track") is True:
        return "On track"
    if row.get("is_on_track") is False:
        return "Behind"
    return "No target"


def _flags(row: dict) -> list[str]:
    names = {
        "is_provisional": "provisional",
        "is_estimated": "estimated",
        "is_confidential": "confidential",
        "is_break": "break in series",
    }
    return [label for col, label in names.items() if row.get(col)]


def _pct(value: Any) -> str:
    v = _num(value)
    return "–" if v is None else f"{v * 100:,.0f} %"


def indicator_card(row: dict) -> str:
    status = _status(row)
    cls = {"On track": "ok", "Behind": "bad"}.get(status, "")
    unit = row.get("unit")
    progress = _num(row.get("progress"))
    elapsed = _num(row.get("elapsed_share"))
    parts = [
        f'<div class="card {cls}" data-indicator="{esc(row.get("indicator_code"))}">',
        f"<h4>{esc(row.get('indicator_name') or row.get('indicator_code'))}</h4>",
        f'<div class="value">{esc(fmt_unit(row.get("value"), unit))}</div>',
        f'<div class="meta">{esc(row.get("year"))} · {esc(row.get("geo_scope") or "")}'
        f"{' · ' + esc(row.get('geo_codes')) if row.get('geo_codes') else ''}</div>",
    ]
    if row.get("target_value") is not None:
        width = 0.0 if progress is None else max(0.0, min(1.0, progress)) * 100
        marker = "" if elapsed is None else f'<i style="left:{max(0.0, min(1.0, elapsed)) * 100:.1f}%"></i>'
        parts.append(
            f'<div class="meta">Target {esc(fmt_unit(row.get("target_value"), unit))} by '
            f"{esc(row.get('target_year'))} (baseline {esc(fmt_unit(row.get('baseline_value'), unit))}, "
            f"{esc(row.get('baseline_year'))})</div>"
            f'<div class="bar" title="progress {esc(_pct(progress))}, time elapsed {esc(_pct(elapsed))}">'
            f'<span style="width:{width:.1f}%"></span>{marker}</div>'
            f'<div class="meta">Progress {esc(_pct(progress))} · time elapsed {esc(_pct(elapsed))}</div>'
        )
        note = BASELINE_NOTES.get(row.get("baseline_check") or "")
        if note:
            parts.append(f'<div class="meta baseline-check">⚠ {esc(note)}</div>')
    badges = [f'<span class="badge {cls}">{esc(status)}</span>']
    if row.get("index_vs_eu") is not None:
        badges.append(f'<span class="badge">EU index {esc(fmt_index(row.get("index_vs_eu")))} (EU = 100)</span>')
    elif row.get("eu27_value") is not None:
        badges.append(f'<span class="badge">EU27 {esc(fmt_unit(row.get("eu27_value"), unit))}</span>')
    if row.get("national_value") is not None:
        badges.append(f'<span class="badge">National {esc(fmt_unit(row.get("national_value"), unit))}</span>')
    if _num(row.get("cagr")) is not None:
        cagr = f"{_num(row.get('cagr')) * 100:+.1f} %"
        badges.append(f'<span class="badge">CAGR {esc(cagr)}</span>')
    badges += [f'<span class="badge flag">{esc(f)}</span>' for f in _flags(row)]
    parts.append("<div>" + "".join(badges) + "</div></div>")
    return "".join(parts)


def _kpi_cards(kpi: dict) -> str:
    items = [
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
    cards = "".join(
        f'<div class="card"><h4>{esc(label)}</h4><div class="value">{esc(value)}</div></div>' for label, value in items
    )
    labels = f'<p class="muted">Labels: {esc(kpi.get("labels"))}</p>' if kpi.get("labels") else ""
    return f'<div class="grid">{cards}</div>{labels}'


def _trajectory_rows(rows: list[dict]) -> dict[str, list[dict]]:
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
            v = _num(r.get(col))
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
        tv = _num(r.get("target_value"))
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


def _sme_latest(rows: list[dict], cluster_id: str) -> tuple[int | None, list[dict]]:
    mine = [r for r in rows if r["cluster_id"] == cluster_id]
    if not mine:
        return None, []
    wave = max(r["wave"] for r in mine)
    return wave, [r for r in mine if r["wave"] == wave]


def _pid(pid: Any) -> str:
    text = str(pid or "")
    short = text if len(text) <= 12 else text[:10] + "…"
    return f' <span class="muted" title="{esc(text)}">{esc(short)}</span>'


def _matchmaking_table(rows: list[dict], names: dict[str, str], limit: int = MATCH_ROWS) -> str:
    if not rows:
        return _nodata("No matchmaking candidates yet.")
    ordered = sorted(
        rows,
        key=lambda r: (
            -(_num(r.get("match_score")) or 0),
            r.get("match_rank") or 0,
            r.get("topic_code") or "",
        ),
    )
    body = [
        [
            esc(r.get("topic_label") or r.get("topic_code")),
            esc(names.get(r["offer_cluster_id"], r["offer_cluster_id"])) + _pid(r.get("offer_respondent_pid")),
            esc(names.get(r["need_cluster_id"], r["need_cluster_id"])) + _pid(r.get("need_respondent_pid")),
            esc(_fmt_number(_num(r.get("match_score")) or 0, 2)),
            esc(r.get("explanation") or ""),
        ]
        for r in ordered[:limit]
    ]
    more = f'<p class="muted">Showing the {limit} best of {len(rows):,} candidates.</p>' if len(rows) > limit else ""
    return (
        _table(["Topic", "Offering member (pseudonym)", "Needing member (pseudonym)", "Score", "Why"], body, [3])
        + more
        + '<p class="muted">Members are pseudonyms: contact goes through the cluster managers.</p>'
    )


def _freshness_section(data: MartData) -> str:
    f = data.freshness
    parts: list[str] = []
    last = f.get("last_run")
    if last:
        parts.append(
            f"<p>Last pipeline run <code>{esc(last.get('run_id'))}</code> (logical date "
            f"{esc(last.get('logical_date'))}), finished {esc(_fmt_ts(last.get('finished_at')))}.</p>"
        )
    else:
        parts.append('<p class="muted">No pipeline run summary recorded yet.</p>')
    pi = data.rows("mart_partnership_indicators")
    as_of = {r.get("as_of_date") for r in pi} - {None}
    if as_of:
        parts.append(f"<p>Eurostat values as published on {esc(', '.join(sorted(map(str, as_of))))}.</p>")
    mart_rows = []
    year_cols = {
        "mart_partnership_indicators": "year",
        "mart_region_benchmarks": "year",
        "mart_sme_needs": "wave",
        "mart_cluster_kpis": "year",
        "mart_matchmaking": "need_wave",
    }
    for mart in MARTS:
        rows = data.rows(mart)
        col = year_cols.get(mart)
        years = [r[col] for r in rows if col and r.get(col) is not None]
        latest = str(max(years)) if years else "–"
        status = "not built yet" if mart not in data.present else ("empty" if not rows else "ok")
        mart_rows.append([f"<code>{esc(mart)}</code>", esc(f"{len(rows):,}"), esc(latest), esc(status)])
    parts.append(_table(["Mart", "Rows", "Latest year / wave", "Status"], mart_rows, [1]))
    sources = f.get("sources") or []
    if sources:
        parts.append("<h3>Sources</h3>")
        parts.append(
            _table(
                ["Source", "Objects loaded", "Last loaded", "Latest publication"],
                [
                    [
                        esc(s["source"]),
                        esc(s["objects"]),
                        esc(_fmt_ts(s["last_loaded"])),
                        esc(_fmt_ts(s["source_updated"])),
                    ]
                    for s in sources
                ],
                [1],
            )
        )
    return '<section id="freshness"><h2>Data freshness</h2>' + "".join(parts) + "</section>"


def _quality_section(data: MartData, cluster_id: str | None, names: dict[str, str]) -> str:
    pi = data.rows("mart_partnership_indicators")
    if cluster_id is not None:
        pi = [r for r in pi if r["cluster_id"] == cluster_id]
    latest = _latest_per(pi, ("cluster_id", "indicator_code"))
    flagged = [r for r in latest if _flags(r)]
    parts: list[str] = []
    if not latest:
        parts.append(_nodata("No indicator values yet."))
    elif not flagged:
        parts.append("<p>No quality flags on the latest indicator values.</p>")
    else:
        parts.append(f"<p>{len(flagged)} of {len(latest)} latest indicator values carry an Eurostat quality flag.</p>")
        if cluster_id is None:
            counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for r in flagged:
                counts[r["cluster_id"]]["any"] += 1
                for flag in _flags(r):
                    counts[r["cluster_id"]][flag] += 1
            kinds = ["provisional", "estimated", "confidential", "break in series"]
            body = [
                [f'<a href="{esc(page_name(c))}">{esc(names.get(c, c))}</a>', esc(counts[c]["any"])]
                + [esc(counts[c][k]) for k in kinds]
                for c in sorted(counts, key=lambda c: names.get(c, c).lower())
            ]
            parts.append(_table(["Cluster", "Flagged values", *[k.capitalize() for k in kinds]], body, [1, 2, 3, 4, 5]))
            parts.append('<p class="muted">Details per indicator on each cluster page.</p>')
        else:
            body = [
                [
                    esc(r.get("indicator_name") or r.get("indicator_code")),
                    esc(r.get("year")),
                    "".join(f'<span class="badge flag">{esc(x)}</span>' for x in _flags(r)),
                ]
                for r in sorted(flagged, key=lambda r: r.get("indicator_code") or "")
            ]
            parts.append(_table(["Indicator", "Year", "Flags"], body))
    revisions = data.rows("mart_eurostat_revisions")
    if revisions:
        recent = sorted(revisions, key=lambda r: str(r.get("revision_detected_at") or ""), reverse=True)[:10]
        parts.append(f"<h3>Eurostat revisions ({len(revisions):,} in total, latest 10)</h3>")
        parts.append(
            _table(
                ["Dataset", "Geo", "Period", "Previous", "New", "Change", "Detected"],
                [
                    [
                        esc(r.get("dataset")),
                        esc(r.get("geo_code")),
                        esc(r.get("time_period")),
                        esc(fmt_unit(r.get("previous_value"), "")),
                        esc(fmt_unit(r.get("value"), "")),
                        esc("–" if _num(r.get("revision_pct")) is None else f"{_num(r.get('revision_pct')):+.1f} %"),
                        esc(str(r.get("revision_detected_at") or "")[:16].replace("T", " ")),
                    ]
                    for r in recent
                ],
                [3, 4, 5],
            )
        )
    elif "mart_eurostat_revisions" in data.present:
        parts.append("<p>No Eurostat revisions detected.</p>")
    quarantined = data.freshness.get("quarantined") or []
    if quarantined and cluster_id is None:
        parts.append(f"<h3>Quarantined or failed batches (latest {len(quarantined)})</h3>")
        parts.append(
            "<p>Problem codes only; row-level reasons are in <code>audit.quarantine</code> and beside each"
            " quarantined file (<code>ss4gl quarantine list</code>).</p>"
        )
        parts.append(
            _table(
                ["Source", "Object", "Status", "Problems", "Codes", "When"],
                [
                    [
                        esc(q["source"]),
                        esc(q["object"]),
                        esc(q.get("status") or ""),
                        esc(q.get("problems") if q.get("problems") is not None else "–"),
                        esc(q.get("codes") or "–"),
                        esc(_fmt_ts(q["updated_at"])),
                    ]
                    for q in quarantined
                ],
                [3],
            )
        )
    return '<section id="quality"><h2>Data quality</h2>' + "".join(parts) + "</section>"


def _labels(codes: str | None, labels: dict[str, str]) -> str:
    """'a,b' service codes -> 'Label A, Label B'."""
    if not codes:
        return "–"
    return ", ".join(labels.get(c.strip(), c.strip()) for c in codes.split(",") if c.strip())


def _transfer(row: dict, names: dict[str, str]) -> str:
    a, b = names.get(row["cluster_a"], row["cluster_a"]), names.get(row["cluster_b"], row["cluster_b"])
    parts = []
    if row.get("a_strengths_for_b_weaknesses"):
        parts.append(f"{esc(a)} → {esc(b)}: {esc(row['a_strengths_for_b_weaknesses'])}")
    if row.get("b_strengths_for_a_weaknesses"):
        parts.append(f"{esc(b)} → {esc(a)}: {esc(row['b_strengths_for_a_weaknesses'])}")
    return "<br>".join(parts) or "–"


def _similarity_rows(sim: list[dict], names: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    measures = (
        ("indicator_similarity", "n_indicators_compared", "Regional indicator profile"),
        ("needs_similarity", "n_services_compared", "SME needs (service gaps)"),
    )
    seen: set[str] = set()
    for r in sim:
        a, b = names.get(r["cluster_a"], r["cluster_a"]), names.get(r["cluster_b"], r["cluster_b"])
        seen.update((a, b))
        for col, ncol, label in measures:
            v = _num(r.get(col))
            if v is None:
                continue
            out.append({"a": a, "b": b, "measure": label, "similarity": v, "n": r.get(ncol)})
            out.append({"a": b, "b": a, "measure": label, "similarity": v, "n": r.get(ncol)})
    for name in seen:
        for _, _, label in measures:
            out.append({"a": name, "b": name, "measure": label, "similarity": 1.0, "n": None})
    return out


# ------------------------------------------------------------------------------------------------ pages
def _overview(data: MartData, names: dict[str, str], generated: str) -> str:
    charts = Charts()
    sections: list[str] = []
    pi = data.rows("mart_partnership_indicators")
    latest = _latest_per(pi, ("cluster_id", "indicator_code"))
    kpis = {r["cluster_id"]: r for r in _latest_per(data.rows("mart_cluster_kpis"), ("cluster_id",))}

    if data.is_empty:
        sections.append(
            '<section id="empty"><h2>No data yet</h2><p class="nodata">The warehouse has no mart rows yet: '
            "run the nightly pipeline (<code>ss4gl run</code>) and build the dashboard again.</p></section>"
        )

    # Clusters
    cards = []
    for cid, name in names.items():
        mine = [r for r in latest if r["cluster_id"] == cid]
        targets = [r for r in mine if r.get("is_on_track") is not None]
        on = sum(1 for r in targets if r["is_on_track"])
        cls = "" if not targets else ("ok" if on * 2 >= len(targets) else "bad")
        k = kpis.get(cid, {})
        facts = [f"{on} of {len(targets)} targets on track" if targets else "no strategy targets yet"]
        if k.get("members_total") is not None:
            facts.append(f"{fmt_unit(k['members_total'], 'NR')} members ({k['year']})")
        if k.get("sme_survey_respondents") is not None:
            facts.append(f"{fmt_unit(k['sme_survey_respondents'], 'NR')} SME survey respondents")
        cards.append(
            f'<div class="card {cls}" data-cluster="{esc(cid)}">'
            f'<h4><a href="{esc(page_name(cid))}">{esc(name)}</a></h4>'
            f'<div class="meta">{"<br>".join(esc(x) for x in facts)}</div></div>'
        )
    sections.append(
        '<section id="clusters"><h2>Clusters</h2>'
        + (f'<div class="grid">{"".join(cards)}</div>' if cards else _nodata("No clusters in the marts yet."))
        + "</section>"
    )

    # Strategy scoreboard
    with_target = [r for r in latest if r.get("target_value") is not None]
    body = _nodata("No strategy targets with values yet.")
    if with_target:
        rows = [
            {
                "cluster": names.get(r["cluster_id"], r["cluster_id"]),
                "indicator": r.get("indicator_name") or r.get("indicator_code"),
                "year": r.get("year"),
                "status": _status(r),
                "value_text": fmt_unit(r.get("value"), r.get("unit")),
                "target_text": f"{fmt_unit(r.get('target_value'), r.get('unit'))} by {r.get('target_year')}",
                "progress_text": _pct(r.get("progress")),
                "elapsed_text": _pct(r.get("elapsed_share")),
            }
            for r in with_target
        ]
        body = (
            '<p class="muted">Latest value per cluster and indicator with a target. '
            "Progress = (value − baseline) / (target − baseline); "
            "on track when progress ≥ the share of the strategy window elapsed.</p>"
            + charts.add(chart_progress_matrix(rows), "Strategy targets: progress by cluster and indicator")
        )
    sections.append(f'<section id="scoreboard"><h2>5-year strategy scoreboard</h2>{body}</section>')

    # SME needs
    needs = data.rows("mart_sme_needs")
    body = _nodata("No SME-needs survey results yet.")
    if needs:
        wave = max(r["wave"] for r in needs)
        cur = [r for r in needs if r["wave"] == wave]
        pooled: dict[str, dict] = {}
        rows = []
        for r in cur:
            label = r.get("service_label") or r["service_code"]
            if _num(r.get("partnership_gap")) is not None:
                pooled[label] = {"kind": "Partnership", "service": label, "gap": _num(r["partnership_gap"])}
            if _num(r.get("gap")) is not None:
                rows.append(
                    {
                        "kind": "Cluster",
                        "service": label,
                        "cluster": names.get(r["cluster_id"], r["cluster_id"]),
                        "gap": _num(r["gap"]),
                    }
                )
        if pooled or rows:
            body = (
                f'<p class="muted">Wave {esc(wave)}: bars = gap over all respondents of the partnership, '
                "points = each cluster. A positive gap is an under-served need.</p>"
                + charts.add(chart_partnership_needs(list(pooled.values()) + rows), "SME needs: service gaps")
            )
    sections.append(f'<section id="sme-needs"><h2>Real needs of member SMEs</h2>{body}</section>')

    # Similarity
    sim = data.rows("mart_cluster_similarity")
    body = _nodata("No cluster comparison yet.")
    if sim:
        sim_rows = _similarity_rows(sim, names)
        body = ""
        if sim_rows:
            body += charts.add(chart_similarity(sim_rows), "Cluster similarity heatmaps")
        labels = data.service_labels()
        syn = [
            [
                esc(names.get(r["cluster_a"], r["cluster_a"])) + " – " + esc(names.get(r["cluster_b"], r["cluster_b"])),
                esc(_labels(r.get("top_shared_needs"), labels)),
                _transfer(r, names),
            ]
            for r in sorted(sim, key=lambda r: (r["cluster_a"], r["cluster_b"]))
        ]
        body += "<h3>Synergy candidates</h3>" + _table(
            ["Pair", "Top shared needs (joint-service candidates)", "Knowledge transfer (SWOT themes)"], syn
        )
    sections.append(f'<section id="similarity"><h2>Similarities and synergies between clusters</h2>{body}</section>')

    sections.append(
        '<section id="matchmaking"><h2>B2B matchmaking candidates</h2>'
        + _matchmaking_table(data.rows("mart_matchmaking"), names)
        + "</section>"
    )
    sections.append(_quality_section(data, None, names))
    sections.append(_freshness_section(data))
    subtitle = (
        f"{len(names)} cluster{'s' if len(names) != 1 else ''} · 5-year cluster partnership strategy"
        if names
        else "No data yet"
    )
    return _page(
        "SmartSports4GoodLife partnership dashboard",
        esc(subtitle),
        _nav(names, None),
        "\n".join(sections),
        charts,
        generated,
    )


def _cluster_page(data: MartData, names: dict[str, str], cid: str, generated: str) -> str:
    charts = Charts()
    name = names.get(cid, cid)
    sections: list[str] = []
    pi = [r for r in data.rows("mart_partnership_indicators") if r["cluster_id"] == cid]
    latest = _latest_per(pi, ("indicator_code",))

    kpi_rows = [r for r in data.rows("mart_cluster_kpis") if r["cluster_id"] == cid]
    if kpi_rows:
        k = max(kpi_rows, key=lambda r: r["year"])
        body = f'<p class="muted">Regional state of affairs {esc(k["year"])}.</p>' + _kpi_cards(k)
    else:
        body = _nodata("No state-of-affairs figures yet.")
    sections.append(f'<section id="kpis"><h2>Cluster organisation</h2>{body}</section>')

    # Indicator cards, grouped by theme
    if latest:
        by_theme: dict[str, list[dict]] = defaultdict(list)
        for r in latest:
            by_theme[r.get("theme") or "other"].append(r)
        order = list(THEMES) + sorted(set(by_theme) - set(THEMES))
        blocks = []
        for theme in order:
            if theme not in by_theme:
                continue
            cards = "".join(
                indicator_card(r)
                for r in sorted(
                    by_theme[theme],
                    key=lambda r: (r.get("target_value") is None, r.get("indicator_code") or ""),
                )
            )
            blocks.append(f'<h3>{esc(THEMES.get(theme, theme))}</h3><div class="grid">{cards}</div>')
        targets = [r for r in latest if r.get("is_on_track") is not None]
        on = sum(1 for r in targets if r["is_on_track"])
        summary = f"<p>{on} of {len(targets)} strategy targets on track.</p>" if targets else ""
        body = summary + "".join(blocks)
    else:
        body = _nodata("No indicator values yet.")
    sections.append(f'<section id="indicators"><h2>Strategy indicators (latest values)</h2>{body}</section>')

    # Trajectories
    traj = _trajectory_rows(pi)
    if traj:
        order = list(THEMES) + sorted(set(traj) - set(THEMES))
        body = (
            '<p class="muted">One panel per indicator, each with its own scale; the orange point is the '
            "strategy target.</p>"
        )
        for theme in order:
            if traj.get(theme):
                label = THEMES.get(theme, theme)
                body += charts.add(chart_trajectories(traj[theme], label), f"Trajectories: {label}")
    else:
        body = _nodata("No indicator history yet.")
    sections.append(f'<section id="trajectories"><h2>Trajectories by theme</h2>{body}</section>')

    # SME needs
    wave, needs = _sme_latest(data.rows("mart_sme_needs"), cid)
    rows = [
        {
            "service": r.get("service_label") or r["service_code"],
            "importance": _num(r.get("mean_importance")),
            "satisfaction": _num(r.get("mean_satisfaction")),
            "gap": _num(r.get("gap")),
            "gap_text": "–" if _num(r.get("gap")) is None else f"{_num(r.get('gap')):+.2f}",
            "respondents": r.get("n_respondents"),
        }
        for r in needs
        if _num(r.get("mean_importance")) is not None or _num(r.get("mean_satisfaction")) is not None
    ]
    if rows:
        first = needs[0]
        interests = [
            f"{k.removeprefix('interest_share_')}: {fmt_share(v)}"
            for k, v in sorted(first.items())
            if k.startswith("interest_share_") and v is not None
        ]
        body = (
            f'<p class="muted">SME needs survey, wave {esc(wave)}, '
            f"{esc(first.get('cluster_wave_respondents'))} respondents. "
            "Gap = importance − satisfaction; largest gap first.</p>"
            + charts.add(chart_sme_gap(rows, f"Importance vs satisfaction per service ({wave})"), "SME needs gap")
            + (f"<p>Cross-sector interest: {esc('; '.join(interests))}.</p>" if interests else "")
        )
    else:
        body = _nodata("No SME-needs survey results yet.")
    sections.append(f'<section id="sme-needs"><h2>Real needs of member SMEs</h2>{body}</section>')

    # Similarity
    sim = [r for r in data.rows("mart_cluster_similarity") if cid in (r["cluster_a"], r["cluster_b"])]
    if sim:
        bars = []
        table = []
        for r in sorted(sim, key=lambda r: r["cluster_b"] if r["cluster_a"] == cid else r["cluster_a"]):
            other = r["cluster_b"] if r["cluster_a"] == cid else r["cluster_a"]
            oname = names.get(other, other)
            for col, label in (
                ("indicator_similarity", "Regional indicator profile"),
                ("needs_similarity", "SME needs (service gaps)"),
            ):
                if _num(r.get(col)) is not None:
                    bars.append({"other": oname, "measure": label, "similarity": _num(r[col])})
            mine_strong = r.get(
                "a_strengths_for_b_weaknesses" if r["cluster_a"] == cid else "b_strengths_for_a_weaknesses"
            )
            theirs = r.get("b_strengths_for_a_weaknesses" if r["cluster_a"] == cid else "a_strengths_for_b_weaknesses")
            table.append(
                [
                    f'<a href="{esc(page_name(other))}">{esc(oname)}</a>',
                    esc(_labels(r.get("top_shared_needs"), data.service_labels())),
                    esc(mine_strong or "–"),
                    esc(theirs or "–"),
                ]
            )
        body = charts.add(chart_similarity_bars(bars), "Similarity with other clusters") if bars else ""
        body += _table(["Cluster", "Top shared needs", f"{name} can share", f"{name} can learn from them"], table)
    else:
        body = _nodata("No cluster comparison yet.")
    sections.append(f'<section id="similarity"><h2>Similar clusters and synergies</h2>{body}</section>')

    mm = [r for r in data.rows("mart_matchmaking") if cid in (r["offer_cluster_id"], r["need_cluster_id"])]
    sections.append(
        '<section id="matchmaking"><h2>B2B matchmaking candidates</h2>' + _matchmaking_table(mm, names) + "</section>"
    )
    sections.append(_quality_section(data, cid, names))
    sections.append(_freshness_section(data))
    return _page(
        f"{name} – strategy dashboard",
        '<a href="index.html">Partnership overview</a> · cluster <code>' + esc(cid) + "</code>",
        _nav(names, cid),
        "\n".join(sections),
        charts,
        generated,
    )


# ------------------------------------------------------------------------------------------------ assets
@functools.cache
def _bundle() -> tuple[str, str]:
    """(version stamp, JS) of Vega + Vega-Lite + vega-embed from the vl-convert-python wheel (no network)."""
    import vl_convert

    try:
        import altair

        minor = ".".join(altair.VEGALITE_VERSION.lstrip("v").split(".")[:2])
        vl_version = minor if minor in vl_convert.get_vegalite_versions() else None
    except Exception:  # noqa: BLE001 - altair absent or unexpected version: newest bundled Vega-Lite
        vl_version = None
    js = vl_convert.javascript_bundle(vl_version=vl_version) if vl_version else vl_convert.javascript_bundle()
    stamp = (
        f"vega {vl_convert.get_vega_version()}, vega-lite {vl_version or 'latest'}, "
        f"vega-embed {vl_convert.get_vega_embed_version()}"
    )
    return stamp, js


def write_assets(out_dir: Path) -> Path:
    """Write assets/vega-bundle.js unless an identical version is already there; return its path."""
    target = out_dir / ASSET_DIR / BUNDLE_NAME
    import vl_convert

    header_prefix = "/* vega-bundle: "
    try:
        with target.open(encoding="utf-8") as fh:
            first = fh.readline()
    except OSError:
        first = ""
    # Cheap check before bundling (bundling takes seconds): same vl-convert version -> same bundle.
    wheel = getattr(vl_convert, "__version__", None) or _dist_version("vl-convert-python")
    if first.startswith(header_prefix) and f"vl-convert-python {wheel};" in first:
        return target
    stamp, js = _bundle()
    header = f"{header_prefix}vl-convert-python {wheel}; {stamp}. Licences: BSD-3-Clause (Vega projects). */\n"
    _write(target, header + js)
    return target


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------------------------ entry point
def render(data: MartData, out_dir: Path, generated: str | None = None) -> Path:
    """Write the pages for already-read mart data; return the path of index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    names = data.cluster_names()
    write_assets(out_dir)
    pages = {page_name(cid): _cluster_page(data, names, cid, generated) for cid in names}
    for stale in out_dir.glob("cluster-*.html"):
        if stale.name not in pages:
            stale.unlink()
    for file_name, text in pages.items():
        _write(out_dir / file_name, text)
    index = out_dir / "index.html"
    _write(index, _overview(data, names, generated))
    log.info("dashboard: %s (%d cluster pages)", index, len(pages))
    return index


def build_dashboard(url: str, out_dir: Path) -> Path:
    """Read the marts at ``url`` and write the static dashboard into ``out_dir``; return index.html's path."""
    return render(read_marts(url), Path(out_dir))
