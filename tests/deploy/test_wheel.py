"""`pip install .` gives a working product (#17.6): the wheel carries everything ss4gl reads.

A copy of the source tree is built into a wheel, installed (``--no-deps``) into a fresh venv outside the repository,
and ``ss4gl`` is run from a folder outside the repository: ``--help``, ``eurostat decode``, ``surveys check`` (the
parser, codebooks, contract, reference lists and GX suites) and ``dbt manifest`` (the whole dbt project), plus a
parse of the bundled DAG. The new venv reuses this venv's dependencies through a ``.pth`` line naming its
site-packages: ``.pth`` files inside that folder are not processed, so the editable install of the checkout does not
leak in; ``ingest`` must come from the new venv, and so must every folder ``ingest.config`` resolves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Not part of the source tree: virtualenvs, VCS, local state, build output, caches.
_SKIP = {".venv", ".git", ".state", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}
# What dbt writes beside the project (never shipped; the copy keeps them, so the test sees them excluded).
_DBT_OUTPUT = ("target", "logs", "dbt_packages")
_BUNDLED = "ingest/_bundled"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_module_folder_is_a_listed_package():
    """Packages are listed in pyproject.toml (discovery cannot rename the bundled root folders): a folder of
    ingest/ with modules that is not listed would be missing from the wheel."""
    listed = set(_pyproject()["packages"])
    folders = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "ingest").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sorted(folders - listed) == [], "add these to [tool.setuptools] packages in pyproject.toml"
    bundled = dict(_pyproject()["package-dir"])
    assert bundled == {
        "ingest._bundled.dags": "dags",
        "ingest._bundled.dbt_project": "dbt_project",
        "ingest._bundled.expectations": "expectations",
    }
    assert set(bundled) <= listed


def test_checkout_reads_the_repository_folders():
    """From the checkout (editable install): the folders at the repository root, the manifest beside the project."""
    from ingest import config

    assert config.CHECKOUT and config.REPO_DIR == REPO
    assert (config.DBT_PROJECT_DIR, config.EXPECTATIONS_DIR, config.DAGS_DIR) == (
        REPO / "dbt_project",
        REPO / "expectations",
        REPO / "dags",
    )
    assert config.DBT_MANIFEST == REPO / "dbt_project" / "target" / "manifest.json"


@dataclass(frozen=True)
class Installed:
    source: Path  # the copy of the source tree the wheel was built from
    wheel: Path
    venv: Path
    site_packages: Path
    work: Path  # cwd of every command: outside the repository
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def ss4gl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.run(str(self.venv / "bin" / "ss4gl"), *args, timeout=timeout)

    def python(self, code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.run(str(self.venv / "bin" / "python"), "-c", code, *args, timeout=timeout)


def _copy_source(dst: Path) -> Path:
    def ignore(_folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n in _SKIP or n.endswith(".egg-info")]

    shutil.copytree(REPO, dst, ignore=ignore)
    return dst


def _build_wheel(source: Path, out: Path) -> Path:
    """The declared backend (setuptools>=69, isolated), from uv's cache when it has it (no download)."""
    uv = [sys.executable, "-m", "uv", "build", "--wheel", "--out-dir", str(out), str(source)]
    res = subprocess.run([*uv, "--offline"], capture_output=True, text=True, timeout=300, check=False)
    if res.returncode != 0:  # not cached yet: let uv fetch the build requirements
        res = subprocess.run(uv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, f"wheel build failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (wheel,) = out.glob("ss4gl-*.whl")
    return wheel


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO)
    source = _copy_source(root / "src")
    wheel = _build_wheel(source, root / "dist")

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            env=_clean_env(),
        ).stdout.strip()
    )
    # The dependencies: this venv's site-packages, appended to sys.path (its own .pth files stay unprocessed).
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site_packages / "ss4gl-test-deps.pth").write_text("".join(f"{d}\n" for d in deps), encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--offline", "--no-deps", "--python", str(py), str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr

    work = root / "work"
    work.mkdir()
    env = _clean_env(
        SS4GL_HOME=str(root / "state"),
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        XDG_STATE_HOME=str(root / "xdg-state"),
    )
    return Installed(source, wheel, venv, site_packages.resolve(), work, env)


def _expected_files(source: Path) -> set[str]:
    """Wheel paths of every data file the product may read, from the tree the wheel was built from."""
    out = set()
    for path in (source / "ingest").rglob("*"):
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
            out.add(path.relative_to(source).as_posix())
    for folder in ("dbt_project", "expectations", "dags"):
        for path in (source / folder).rglob("*"):
            rel = path.relative_to(source / folder)
            dev_only = any(part.startswith(".") or part == "__pycache__" for part in rel.parts)  # .sqlfluff, caches
            dbt_output = folder == "dbt_project" and rel.parts[0] in _DBT_OUTPUT
            if path.is_file() and not dev_only and not dbt_output:
                out.add(f"{_BUNDLED}/{folder}/{rel.as_posix()}")
    return out


def test_wheel_carries_what_the_product_reads(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    missing = sorted(_expected_files(installed.source) - names)
    assert missing == [], f"not in the wheel (pyproject.toml [tool.setuptools.package-data]): {missing}"
    # The named essentials, in case the tree itself lost them.
    for name in (
        "dbt_project/dbt_project.yml",
        "dbt_project/profiles.yml",
        "dags/ss4gl_nightly.py",
        "expectations/eurostat_observations.json",
        "expectations/survey_soa_profile.json",
        "expectations/reference/geo.json",
    ):
        assert f"{_BUNDLED}/{name}" in names
    assert any(n.startswith(f"{_BUNDLED}/dbt_project/models/marts/") and n.endswith(".sql") for n in names)
    assert any(n.startswith(f"{_BUNDLED}/dbt_project/seeds/") and n.endswith(".csv") for n in names)
    for name in (
        "dashboard/templates/base.html.j2",
        "dashboard/templates/overview.html.j2",
        "dashboard/static/dashboard.css",
        "dashboard/static/dashboard.js",
        "catalogue.yml",
        "migrations/0001_init.sql",
        "samples/eurostat/toc.txt",
        "surveys/contract/codes.yml",
        "surveys/reference/nuts3.csv",
    ):
        assert f"ingest/{name}" in names
    assert any(n.startswith("ingest/samples/inbox/") and n.endswith(".xlsx") for n in names)
    assert any(n.startswith("ingest/surveys/codebooks/") and n.endswith(".yml") for n in names)
    # Never dbt's output, never the tests or the dev tools.
    shipped_dbt_output = [n for n in names if n.startswith(tuple(f"{_BUNDLED}/dbt_project/{d}/" for d in _DBT_OUTPUT))]
    assert shipped_dbt_output == []
    assert not any(n.startswith(("tests/", "tools/", "bench/", "dbt_project/", "expectations/")) for n in names)


PROBE = textwrap.dedent(
    """
    import json, os, sys
    import ingest, ingest.config as c
    print(json.dumps({
        "ingest": ingest.__file__, "checkout": c.CHECKOUT, "dbt_project": str(c.DBT_PROJECT_DIR),
        "expectations": str(c.EXPECTATIONS_DIR), "dags": str(c.DAGS_DIR), "samples": str(c.SAMPLES_DIR),
        "catalogue": str(c.CATALOGUE_PATH), "manifest": str(c.DBT_MANIFEST), "state": str(c.state_dir()),
        "editable": sorted(m for m in sys.modules if "editable" in m),
    }))
    """
)


def test_installed_paths_are_the_packaged_copies(installed):
    """Imported from the new venv, reading the folders it carries; state (and the manifest) out of the install."""
    res = installed.python(PROBE)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    site = installed.site_packages
    assert Path(got["ingest"]).resolve() == site / "ingest" / "__init__.py"
    assert got["checkout"] is False and got["editable"] == []
    for key in ("dbt_project", "expectations", "dags", "samples", "catalogue"):
        path = Path(got[key])
        assert path.is_relative_to(site / "ingest"), f"{key} read from {path}, not from the installed package"
        assert path.exists(), path
        assert not path.is_relative_to(REPO)
    assert (Path(got["dbt_project"]) / "dbt_project.yml").is_file()
    assert sorted(p.name for p in Path(got["expectations"]).glob("*.json")) == sorted(
        p.name for p in (installed.source / "expectations").glob("*.json")
    )
    assert Path(got["state"]) == Path(installed.env["SS4GL_HOME"])
    assert Path(got["manifest"]) == Path(installed.env["SS4GL_HOME"]) / "dbt" / "manifest" / "manifest.json"
    # Without SS4GL_HOME: the user's state folder, never the installation.
    env = {k: v for k, v in installed.env.items() if k != "SS4GL_HOME"}
    res = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", PROBE],
        cwd=installed.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["state"] == str(Path(env["XDG_STATE_HOME"]) / "ss4gl")


def test_installed_cli_runs_outside_the_repository(installed):
    assert not installed.work.resolve().is_relative_to(REPO)
    bundled = installed.site_packages / "ingest"

    res = installed.ss4gl("--help")
    assert res.returncode == 0, res.stderr
    assert "eurostat" in res.stdout and "surveys" in res.stdout

    # A bundled JSON-stat sample, read from the installed package.
    res = installed.ss4gl("eurostat", "decode", str(bundled / "samples" / "eurostat" / "bd_size.json"), "-o", "out.csv")
    assert res.returncode == 0, res.stderr
    lines = (installed.work / "out.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("dataset,") and len(lines) > 10

    # A bundled survey workbook (xlsx): parser, codebook, contract, reference lists and the GX suites.
    sample = bundled / "samples" / "inbox" / "cluster_montagne" / "state_of_affairs" / "state_of_affairs_2025.xlsx"
    target = installed.work / "inbox" / "cluster_montagne" / "state_of_affairs" / sample.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(sample, target)
    res = installed.ss4gl("surveys", "check", str(target.relative_to(installed.work)))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("OK: would load"), res.stdout

    # The whole dbt project parses; the manifest goes to the state folder, nothing into the installation.
    res = installed.ss4gl("dbt", "manifest")
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = Path(installed.env["SS4GL_HOME"]) / "dbt" / "manifest" / "manifest.json"
    assert res.stdout.strip() == str(manifest)
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    assert any(n.startswith("model.ss4gl.mart_") for n in nodes)
    project = bundled / "_bundled" / "dbt_project"
    assert [d for d in _DBT_OUTPUT if (project / d).exists()] == []

    # The bundled DAG parses from the installed copy (what `ss4gl run` loads), Cosmos reading that manifest.
    res = installed.python(
        "from airflow.models.dagbag import DagBag; from ingest.config import DAGS_DIR;"
        "bag = DagBag(dag_folder=str(DAGS_DIR));"
        "print(sorted(bag.import_errors.values()) or sorted(bag.dag_ids))"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "['ss4gl_nightly']", res.stdout + res.stderr
