"""The READMEs quote every formula of the model YAML verbatim (tools/formulas.py --check); the check catches drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "formulas.py"
YAML = Path("dbt_project/models/marts/mart_partnership_indicators.yml")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--check", "--root", str(root)], capture_output=True, text=True, timeout=60
    )


def copy_docs(target: Path) -> Path:
    """The READMEs and the model YAML (all the tool reads) in a throwaway tree."""
    shutil.copy2(REPO / "README.md", target / "README.md")
    (target / "dbt_project").mkdir()
    shutil.copy2(REPO / "dbt_project" / "README.md", target / "dbt_project" / "README.md")
    shutil.copytree(REPO / "dbt_project" / "models", target / "dbt_project" / "models")
    return target


def test_readmes_quote_the_model_yaml() -> None:
    result = check(REPO)
    assert result.returncode == 0, "README formulas drifted from the model YAML (run make docs-formulas):\n" + (
        result.stdout + result.stderr
    )


def test_check_reports_a_changed_yaml_formula(tmp_path: Path) -> None:
    root = copy_docs(tmp_path)
    assert check(root).returncode == 0
    path = root / YAML
    text = path.read_text(encoding="utf-8")
    old = "(year - baseline_year) / (target_year - baseline_year), clamped to [0, 1]"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "(year - baseline_year) / (target_year - baseline_year + 1), clamped to [0, 1]"))

    result = check(root)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines  # one line per drift: only dbt_project/README.md quotes elapsed_share
    assert lines[0].startswith("dbt_project/README.md: mart_partnership_indicators.elapsed_share: README says")
    assert "target_year - baseline_year + 1" in lines[0]

    # writing regenerates the quote, after which the check passes again
    subprocess.run([sys.executable, str(TOOL), "--root", str(root)], check=True, timeout=60)
    assert check(root).returncode == 0
    assert "target_year - baseline_year + 1" in (root / "dbt_project" / "README.md").read_text(encoding="utf-8")


def test_check_reports_a_hand_edited_readme_quote(tmp_path: Path) -> None:
    root = copy_docs(tmp_path)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert text.count("(default 0.01 = 1 %)") == 1
    readme.write_text(text.replace("(default 0.01 = 1 %)", "(default 0.05 = 5 %)"), encoding="utf-8")

    lines = check(root).stdout.splitlines()

    assert lines == [line for line in lines if line.startswith("README.md: int_indicator_values_resolved.value:")]
    assert len(lines) == 1
