"""Vega-Lite chart specs (made with Altair) and the per-page collector that numbers them for the templates.

A page's charts are drawn in the browser by vega-embed: each gets a container ``<div class="chart">`` and a
``<script type="application/json">`` block holding its spec. The spec JSON is the only markup-like text this
module hands to the templates unescaped (:class:`markupsafe.Markup`): it is serialised here, from data the page
views built, with ``<``, ``>``, ``&`` and the JavaScript line separators escaped, so it cannot end the script
block whatever the warehouse text inside it says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

STATUS_COLOURS = {"On track": "#1a7f37", "Behind": "#c62828", "No target": "#8a8f98"}


@dataclass(frozen=True)
class ChartRef:
    """One chart of a page: container id, accessible title and Vega-Lite spec."""

    id: str
    title: str
    spec: dict

    @property
    def spec_id(self) -> str:
        return f"{self.id}-spec"

    @property
    def spec_json(self) -> Markup:
        """The spec for a ``<script type="application/json">`` block (generated here, safe inside it)."""
        return Markup(script_json(self.spec))  # generated here; < > & are \u00xx escapes


# Checking each spec against the Vega-Lite JSON schema (jsonschema) is about a third of a dashboard build. The specs
# are made by this package from fixed code: the tests build every chart with the check on
# (tests/dashboard/test_dashboard.py), a nightly does not repeat it.
VALIDATE_SPECS = False


class Charts:
    """Collects the Vega-Lite specs of one page in document order (ids chart-1, chart-2, ...)."""

    def __init__(self) -> None:
        self.specs: list[ChartRef] = []

    def add(self, chart: Any, title: str) -> ChartRef:
        spec = chart.to_dict(validate=VALIDATE_SPECS) if hasattr(chart, "to_dict") else chart
        ref = ChartRef(f"chart-{len(self.specs) + 1}", title, spec)
        self.specs.append(ref)
        return ref


def script_json(obj: Any) -> str:
    """JSON that is inert inside an HTML ``<script>`` element."""
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
