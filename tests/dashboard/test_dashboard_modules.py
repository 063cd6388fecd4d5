"""The dashboard package's layout (issue #17.2): one-way imports between its modules, templates and static files
read from the package (not the repository), and autoescaping instead of hand escaping. No database needed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jinja2

import ingest.dashboard
from ingest.dashboard.build import indicator_card
from ingest.dashboard.pages import environment, overview_page

PACKAGE = Path(ingest.dashboard.__file__).parent
# Each module may import only modules listed before it (commands and __init__ sit on top of build).
LAYERS = ["formatting", "data", "provenance", "sections", "views", "charts", "assets", "pages", "build"]


def dashboard_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ingest.dashboard"):
            if node.module == "ingest.dashboard":
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.removeprefix("ingest.dashboard."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("ingest.dashboard.") for a in node.names if a.name.startswith("ingest.dashboard.")
            )
    return found


def test_modules_import_one_way_and_stay_small():
    for i, module in enumerate(LAYERS):
        assert dashboard_imports(module) <= set(LAYERS[:i]), module
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 500, path.name


def test_templates_and_static_files_come_from_the_package():
    env = environment()
    assert isinstance(env.loader, jinja2.PackageLoader)
    assert set(env.list_templates()) >= {"base.html.j2", "overview.html.j2", "cluster.html.j2", "macros.html.j2"}
    assert (PACKAGE / "static" / "dashboard.css").is_file() and (PACKAGE / "static" / "dashboard.js").is_file()
    assert not re.search(r"\besc\(", "".join(p.read_text(encoding="utf-8") for p in PACKAGE.glob("*.py")))
    assert "|safe" not in "".join(p.read_text(encoding="utf-8").replace(" ", "") for p in PACKAGE.rglob("*.j2"))


def test_indicator_card_escapes_warehouse_text_and_prints_missing_values_as_nothing():
    row = {
        "indicator_code": 'X"><script>',
        "indicator_name": "<img src=x onerror=alert(1)>",
        "value": 3,
        "unit": "PC",
        "year": None,
        "geo_scope": None,
        "target_value": 5,
        "target_year": None,
        "baseline_value": 1,
        "baseline_year": 2020,
        "progress": None,
        "elapsed_share": None,
    }
    html = indicator_card(row)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" not in html and 'data-indicator="X&#34;&gt;&lt;script&gt;"' in html
    assert "None" not in html
    assert '<div class="meta"> · </div>' in html and "Target 5.0 % by  (baseline 1.0 %, 2020)" in html


def test_a_page_is_self_contained_with_the_package_css_and_js_inlined():
    from ingest.dashboard.data import MartData

    html = overview_page(MartData({}, set(), {}), {}, "2025-01-01 00:00 UTC")
    css = (PACKAGE / "static" / "dashboard.css").read_text(encoding="utf-8")
    js = (PACKAGE / "static" / "dashboard.js").read_text(encoding="utf-8")
    assert css in html and js in html and '<script src="assets/vega-bundle.js"></script>' in html
    assert "No data yet" in html and "not built yet" in html
