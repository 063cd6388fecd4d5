"""Rendering: page views + chart specs -> HTML through the Jinja2 templates of ``ingest/dashboard/templates``.

Autoescaping is on for every template, so any text that comes from the warehouse is escaped where it is
placed. The only values marked safe (:class:`markupsafe.Markup`) are our own: the CSS / JS of
``ingest/dashboard/static`` and the chart-spec JSON (see :class:`ingest.dashboard.charts.ChartRef`).
Templates and static files are read from the installed package (``PackageLoader`` / ``importlib.resources``).
"""

from __future__ import annotations

import functools

import jinja2
from markupsafe import Markup

from ingest.dashboard import charts as ch
from ingest.dashboard import views
from ingest.dashboard.assets import BUNDLE_SRC, static_text
from ingest.dashboard.data import MartData
from ingest.dashboard.formatting import page_name

OVERVIEW_TITLE = "SmartSports4GoodLife partnership dashboard"


def _finalize(value):
    return "" if value is None else value  # a missing value prints as nothing, never as "None"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ingest.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["page_name"] = page_name
    return env


def _render(template: str, charts: ch.Charts, **context) -> str:
    return (
        environment()
        .get_template(template)
        .render(
            charts=charts.specs,
            css=Markup(static_text("dashboard.css")),  # our package file
            js=Markup(static_text("dashboard.js")),  # our package file
            bundle_src=BUNDLE_SRC,
            **context,
        )
    )


def indicator_card(row: dict) -> str:
    """HTML of one indicator card (latest value, target progress, comparisons, quality flags)."""
    macros = environment().get_template("macros.html.j2").module
    return str(macros.indicator_card(views.indicator_card(row)))


def overview_page(data: MartData, names: dict[str, str], generated: str) -> str:
    """index.html: every cluster, the strategy scoreboard, partnership needs, synergies, quality, freshness."""
    v = views.overview(data, names)
    charts = ch.Charts()
    c = {"scoreboard": None, "needs": None, "similarity": None}
    if v["scoreboard"]:
        c["scoreboard"] = charts.add(
            ch.chart_progress_matrix(v["scoreboard"]), "Strategy targets: progress by cluster and indicator"
        )
    if v["needs"]:
        c["needs"] = charts.add(ch.chart_partnership_needs(v["needs"]["rows"]), "SME needs: service gaps")
    if v["similarity"] and v["similarity"]["heatmap"]:
        c["similarity"] = charts.add(ch.chart_similarity(v["similarity"]["heatmap"]), "Cluster similarity heatmaps")
    return _render(
        "overview.html.j2", charts, title=OVERVIEW_TITLE, generated=generated, names=names, current=None, v=v, c=c
    )


def cluster_page(data: MartData, names: dict[str, str], cid: str, generated: str) -> str:
    """cluster-<id>.html: the cluster's KPIs, indicators, trajectories, SME needs, similar clusters, matches."""
    v = views.cluster(data, names, cid)
    charts = ch.Charts()
    c = {
        "trajectories": [
            charts.add(ch.chart_trajectories(t["rows"], t["label"]), f"Trajectories: {t['label']}")
            for t in v["trajectories"] or []
        ],
        "needs": None,
        "similarity": None,
    }
    if v["needs"]:
        c["needs"] = charts.add(ch.chart_sme_gap(v["needs"]["rows"], v["needs"]["title"]), "SME needs gap")
    if v["similarity"] and v["similarity"]["bars"]:
        bars = ch.chart_similarity_bars(v["similarity"]["bars"])
        c["similarity"] = charts.add(bars, "Similarity with other clusters")
    title = f"{v['name']} – strategy dashboard"
    return _render("cluster.html.j2", charts, title=title, generated=generated, names=names, current=cid, v=v, c=c)
