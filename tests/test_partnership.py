"""`ss4gl catalogue check`: the catalogue and the dbt seeds checked together, one line per problem (issue #20.4;
the strategy baselines against the data are checked on a real bundled night in
tests/pipeline/recompute/checks.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ingest.config import CATALOGUE_PATH
from ingest.partnership import SEEDS_DIR, check_configuration

REPO = Path(__file__).resolve().parents[1]


def broken_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A catalogue and seeds folder with one problem of each kind."""
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    cat["clusters"].append(dict(cat["clusters"][0]))  # indescat twice
    cat["clusters"][1]["regions"] = ["FRK2", "FRK1", "FRX9"]  # no NUTS code
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(cat, allow_unicode=True), encoding="utf-8")
    regions = (seeds / "cluster_regions.csv").read_text(encoding="utf-8")
    (seeds / "cluster_regions.csv").write_text(
        regions.replace("sports_technology,NL36,2024", "sports_technology,NL36,2021").replace(
            "mse_cluster,HU32,2021", "mse_cluster,NL36,2021"
        ),
        encoding="utf-8",
    )
    targets = (seeds / "strategy_targets.csv").read_text(encoding="utf-8").rstrip("\n") + "\n"
    with (seeds / "strategy_targets.csv").open("w", encoding="utf-8") as fh:
        fh.write(
            targets + "nobody,GDP_EUR_HAB,2020,1,2025,2\nepsi,NO_SUCH,2020,1,2025,2\nepsi,DIG_INT_HI,2025,20,2025,30\n"
        )
    return path, seeds


def test_the_bundled_configuration_is_consistent():
    assert check_configuration() == []


def test_every_problem_is_one_line_naming_what_and_where(tmp_path):
    path, seeds = broken_copy(tmp_path)
    problems = check_configuration(path, seeds)
    expected = [
        "catalogue.yml: cluster id 'indescat' is defined twice",
        "catalogue.yml: cluster cluster_montagne: region FRX9 is no NUTS 2021 or NUTS 2024 code",
        "catalogue.yml: cluster cluster_montagne: region FRX9 missing from seed cluster_regions.csv",
        "catalogue.yml: cluster sports_technology: region NL36 is not a NUTS 2021 code"
        " (cluster_regions.csv nuts_version)",
        "catalogue.yml: cluster mse_cluster: region HU32 missing from seed cluster_regions.csv",
        "cluster_regions.csv: mse_cluster NL36 is not a region of cluster mse_cluster in catalogue.yml",
        "strategy_targets.csv: epsi DIG_INT_HI: two targets for one cluster and indicator",
        "strategy_targets.csv line 9: nobody GDP_EUR_HAB: unknown cluster nobody",
        "strategy_targets.csv line 10: epsi NO_SUCH: unknown indicator NO_SUCH (seed indicators.csv)",
        "strategy_targets.csv line 11: epsi DIG_INT_HI: baseline year 2025 is not before target year 2025",
    ]
    assert sorted(problems) == sorted(expected)


def test_the_command_exits_1_with_one_line_per_problem_and_no_traceback(tmp_path):
    path, _ = broken_copy(tmp_path)
    ok = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "catalogue", "check", "--no-data"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "catalogue and seeds consistent", ok.stdout + ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "catalogue", "check", "--no-data", "--catalogue", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    assert "error: catalogue.yml: cluster id 'indescat' is defined twice" in lines
