"""Static HTML strategy dashboard from the marts: ``index.html`` (overview) + ``cluster-<id>.html``.

Charts are Vega-Lite specs made with Altair and drawn in the browser by vega-embed. The Vega, Vega-Lite and
vega-embed JavaScript comes from the ``vl-convert-python`` wheel (``vl_convert.javascript_bundle()``) and is
written once to ``<out_dir>/assets/vega-bundle.js``: the pages load nothing from the network, so the folder
can be opened from disk, copied to a file share or served by any static web server. Each page is one HTML file
with the dashboard's CSS and JS inlined.

Every text that comes from the warehouse is HTML-escaped (Jinja2 autoescaping); chart specs are embedded as
JSON in ``<script type="application/json">`` blocks with ``<``, ``>`` and ``&`` escaped. Missing marts
(nothing built yet) or empty marts give "no data yet" sections, never an error. Clusters are the ones found
in the marts.

Every page opens with a banner that says what it shows (:mod:`ingest.dashboard.provenance`): the data's origin
(the bundled synthetic samples, labelled "SYNTHETIC SAMPLE DATA — not real figures", or live sources), the as-of date
and the last run's state, all from the warehouse's audit records, so a dashboard rebuilt later says the same.

Modules, each importing only the ones before it: ``formatting`` (numbers, units, file names) -> ``data``
(reading the marts, row helpers) -> ``provenance`` (the banner) -> ``sections`` / ``views`` (what each page shows,
as plain dicts) -> ``charts`` (Vega-Lite specs) -> ``assets`` (static files, Vega bundle) -> ``pages`` (Jinja2
rendering) -> ``build`` (this entry point: writes the folder).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from ingest.dashboard.assets import ASSET_DIR, BUNDLE_NAME, write_assets, write_text
from ingest.dashboard.data import MARTS, THEMES, MartData, read_marts
from ingest.dashboard.formatting import fmt_index, fmt_share, fmt_unit, page_name, unit_label
from ingest.dashboard.pages import cluster_page, indicator_card, overview_page

log = logging.getLogger(__name__)

__all__ = [
    "ASSET_DIR",
    "BUNDLE_NAME",
    "MARTS",
    "THEMES",
    "MartData",
    "build_dashboard",
    "fmt_index",
    "fmt_share",
    "fmt_unit",
    "indicator_card",
    "page_name",
    "read_marts",
    "render",
    "unit_label",
    "write_assets",
]


def render(data: MartData, out_dir: Path, generated: str | None = None) -> Path:
    """Write the pages for already-read mart data; return the path of index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    names = data.cluster_names()
    write_assets(out_dir)
    pages = {page_name(cid): cluster_page(data, names, cid, generated) for cid in names}
    for stale in out_dir.glob("cluster-*.html"):
        if stale.name not in pages:
            stale.unlink()
    for file_name, text in pages.items():
        write_text(out_dir / file_name, text)
    index = out_dir / "index.html"
    write_text(index, overview_page(data, names, generated))
    log.info("dashboard: %s (%d cluster pages)", index, len(pages))
    return index


def build_dashboard(url: str, out_dir: Path) -> Path:
    """Read the marts at ``url`` and write the static dashboard into ``out_dir``; return index.html's path."""
    return render(read_marts(url), Path(out_dir))
