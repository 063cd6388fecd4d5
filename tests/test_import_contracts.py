"""Import contracts (#17): imports flow one way, and no two ingest modules import each other (directly or not).

    config (ingest.config) → domain (eurostat, sdmx, surveys, validation, dashboard, warehouse, archive, storage, load,
    quarantine, partnership) → tasks (ingest.tasks.*) → orchestration (ingest.orchestration) → dags/

Entry points (``ingest.cli``, ``ingest.localrun``, ``ingest.ui``, ``*.commands``) may import anything below them
except ``dags``; nothing else imports an entry point. A module may import its own layer or any layer below it, never
one above. ``ingest/`` and ``dags/`` are exactly what runs in production: they never import the development tools
(``tools``: the generators of the committed samples and suites).

Every ``import`` statement counts, wherever it is: at module level, inside a function (the lazy imports that keep
DAG parsing light), under ``if TYPE_CHECKING`` or in a ``try``. Whether ``dags/`` imports anything heavy at parse
time is tested in ``tests/test_dags.py``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("ingest", "dags")

LAYERS = ("config", "domain", "tasks", "orchestration", "dags")  # lowest first
ENTRY = "entry point"
# ingest.quarantine, ingest.partnership and ingest.status also offer `register(subparsers)` to the CLI: domain
# modules all the same.
DOMAIN = (
    "ingest.eurostat",
    "ingest.sdmx",
    "ingest.surveys",
    "ingest.validation",
    "ingest.dashboard",
    "ingest.warehouse",
    "ingest.warehouse_url",
    "ingest.archive",
    "ingest.storage",
    "ingest.progress",
    "ingest.load",
    "ingest.quarantine",
    "ingest.partnership",
    "ingest.status",
)
ENTRY_POINTS = ("ingest.cli", "ingest.localrun", "ingest.ui")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest module of ours the statement names)
    where: str  # path:line of the statement

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str | None:
    if module in ENTRY_POINTS or module.rsplit(".", 1)[-1] == "commands":
        return ENTRY
    if module in ("ingest", "ingest.config"):
        return "config"
    if any(_within(module, p) for p in DOMAIN):
        return "domain"
    if _within(module, "ingest.tasks"):
        return "tasks"
    if module == "ingest.orchestration":
        return "orchestration"
    if _within(module, "dags"):
        return "dags"
    return None


def allowed(source_layer: str, target_layer: str) -> bool:
    if target_layer == ENTRY:
        return source_layer == ENTRY
    if source_layer == ENTRY:
        return target_layer != "dags"
    return LAYERS.index(target_layer) <= LAYERS.index(source_layer)


def module_files(repo: Path = REPO, roots: tuple[str, ...] = ROOTS) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the roots (packages by their ``__init__``)."""
    out = {}
    for root in roots:
        for path in sorted((repo / root).rglob("*.py")):
            parts = list(path.relative_to(repo).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _ours(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest of our modules that ``name`` (a module, or a module's attribute) lies in, if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path], repo: Path = REPO) -> list[Import]:
    """Every import statement of one file (anywhere in it) that names one of our modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . / .. import
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule ``pkg.sub``; ``from mod import name`` the module.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        where = f"{path.relative_to(repo)}:{getattr(node, 'lineno', '?')}"
        for name in dict.fromkeys(names):
            target = _ours(name, modules)
            if target is not None and target != module:
                found.append(Import(module, target, where))
    return found


def import_graph(repo: Path = REPO, roots: tuple[str, ...] = ROOTS) -> tuple[dict[str, Path], list[Import]]:
    modules = module_files(repo, roots)
    return modules, [imp for name, path in modules.items() for imp in imports_of(name, path, modules, repo)]


def tool_imports(repo: Path = REPO, roots: tuple[str, ...] = ROOTS) -> list[str]:
    """``path:line: name`` of every import statement under the roots that names the ``tools`` package."""
    found = []
    for path in module_files(repo, roots).values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{path.relative_to(repo)}:{node.lineno}: {name}"
                for name in names
                if name == "tools" or name.startswith("tools.")
            ]
    return sorted(found)


def unplaced(modules) -> list[str]:
    return sorted(m for m in modules if layer_of(m) is None)


def layer_violations(edges: list[Import]) -> list[str]:
    out = []
    for imp in edges:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src and dst and not allowed(src, dst):
            out.append(f"{imp} (layer {src} must not import layer {dst})")
    return out


def cycles(edges: list[Import]) -> list[str]:
    """One readable cycle per strongly connected component of the graph (Tarjan), each edge with its line."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in edges:
        graph.setdefault(imp.source, {}).setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # the graph is small (a few dozen modules): recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    out = []
    for component in components:
        members, start = set(component), min(component)
        # Shortest way back to the start inside the component (breadth first): the cycle to report.
        previous: dict[str, Import] = {}
        frontier, seen = [start], {start}
        while frontier and start not in previous:
            nxt = []
            for v in frontier:
                for w, imp in sorted(graph.get(v, {}).items()):
                    if w in members and (w == start or w not in seen) and w not in previous:
                        previous[w] = imp
                        seen.add(w)
                        nxt.append(w)
            frontier = nxt
        path, v = [], start
        while True:
            imp = previous[v]
            path.append(imp)
            v = imp.source
            if v == start:
                break
        path.reverse()
        out.append(" → ".join([start] + [f"{imp.target} ({imp.where})" for imp in path]))
    return sorted(out)


# ------------------------------------------------------------------------------------------------- the contracts
def test_every_module_has_a_layer():
    modules, _ = import_graph()
    assert {"ingest.config", "ingest.orchestration", "ingest.tasks.transform", "dags.ss4gl_nightly"} <= set(modules)
    assert unplaced(modules) == [], "modules in no layer (place them in tests/test_import_contracts.py)"


def test_imports_flow_one_way():
    _, edges = import_graph()
    assert any(imp.source == "dags.ss4gl_nightly" for imp in edges)  # the walker sees imports at all
    assert any(imp.source == "ingest.orchestration" and imp.target.startswith("ingest.tasks.") for imp in edges)
    violations = layer_violations(edges)
    assert violations == [], "imports against the layer order:\n" + "\n".join(violations)


def test_no_import_cycles():
    _, edges = import_graph()
    found = cycles(edges)
    assert found == [], "import cycles between ingest modules:\n" + "\n".join(found)


def test_product_never_imports_the_tools():
    found = tool_imports()
    assert found == [], "ingest/ or dags/ importing the development tools (tools/):\n" + "\n".join(found)


# ------------------------------------------------------------------------------------------------- self-checks
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_self_check_catches_function_level_violations_and_cycles(tmp_path):
    """A synthetic tree with the kinds of violation this test exists for: each must be reported."""
    _write(
        tmp_path,
        {
            "ingest/__init__.py": "",
            "ingest/config.py": "",
            "ingest/orchestration.py": "def f():\n    from ingest.tasks import transform\n",
            "ingest/tasks/transform.py": (
                "from ingest.config import X\n"
                "def g():\n    from ingest.orchestration import DBT_MANIFEST\n"  # upward, inside a function
                "    from . import publish\n"  # relative
            ),
            "ingest/tasks/publish.py": "import ingest.tasks.transform\n",
            "ingest/eurostat/__init__.py": "",
            "ingest/eurostat/client.py": "from ingest.tasks import common\n",  # domain importing tasks
            "ingest/eurostat/commands.py": "from ingest.tasks import common\n",  # an entry point: allowed
            "ingest/tasks/common.py": "",
            "ingest/warehouse.py": "def h():\n    import ingest.localrun\n",  # importing an entry point
            "ingest/localrun.py": "from ingest.orchestration import f\n",
            "dags/d.py": "from ingest import orchestration\n",
        },
    )
    modules, edges = import_graph(tmp_path)
    assert unplaced(modules) == []
    assert {(i.source, i.target) for i in edges} >= {
        ("ingest.tasks.transform", "ingest.orchestration"),
        ("ingest.tasks.transform", "ingest.tasks.publish"),
        ("ingest.tasks.publish", "ingest.tasks.transform"),
        ("dags.d", "ingest.orchestration"),
    }
    violations = layer_violations(edges)
    assert len(violations) == 3, violations
    assert any(
        v.startswith("ingest/tasks/transform.py:3: ingest.tasks.transform imports ingest.orchestration")
        for v in violations
    ), violations
    assert any("ingest.eurostat.client imports ingest.tasks.common" in v for v in violations), violations
    assert any("ingest.warehouse imports ingest.localrun" in v for v in violations), violations
    found = cycles(edges)
    assert len(found) == 1, found  # one component: orchestration, transform and publish
    assert found[0].startswith("ingest.orchestration → ingest.tasks.transform (ingest/orchestration.py:2)"), found
    assert found[0].endswith("→ ingest.orchestration (ingest/tasks/transform.py:3)"), found
    assert "ingest.tasks.publish" not in found[0]  # the shortest cycle through the component's first module


def test_self_check_clean_tree_passes(tmp_path):
    _write(
        tmp_path,
        {
            "ingest/__init__.py": "",
            "ingest/config.py": "import os\n",
            "ingest/eurostat/__init__.py": "from ingest.eurostat.errors import E\n",  # a package and its submodule
            "ingest/eurostat/errors.py": "from ingest.config import X\n",
            "ingest/tasks/eurostat.py": "from ingest.eurostat import errors\n",
            "ingest/orchestration.py": "def f():\n    from ingest.tasks import eurostat\n",
            "ingest/cli.py": "def main():\n    from ingest import orchestration\n",
            "dags/d.py": "from ingest import orchestration as o\n",
        },
    )
    modules, edges = import_graph(tmp_path)
    assert unplaced(modules) == []
    assert layer_violations(edges) == []
    assert cycles(edges) == []
    assert ("ingest.tasks.eurostat", "ingest.eurostat.errors") in {(i.source, i.target) for i in edges}


def test_self_check_catches_tool_imports(tmp_path):
    _write(
        tmp_path,
        {
            "ingest/__init__.py": "",
            "ingest/config.py": "import toolsy\nfrom . import tools\n",  # neither is the tools package
            "ingest/eurostat/replay.py": "def main():\n    from tools.eurostat_samples import OUT_DIR\n",
            "dags/d.py": "import tools\n",
            "tools/__init__.py": "",
            "tools/eurostat_samples.py": "from ingest.config import X\n",  # tools may import the product
        },
    )
    assert tool_imports(tmp_path) == [
        "dags/d.py:1: tools",
        "ingest/eurostat/replay.py:2: tools.eurostat_samples",
    ]


MAX_MODULE_LINES = 500  # #17: a module fits on a few screens


def test_no_product_module_over_500_lines():
    """Every module of the product (``ingest/``, ``dags/``) stays under the size a newcomer reads at once."""
    long = [
        f"{path.relative_to(REPO)}: {n} lines"
        for root in ROOTS
        for path in sorted((REPO / root).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by stage or concern):\n" + "\n".join(long)
