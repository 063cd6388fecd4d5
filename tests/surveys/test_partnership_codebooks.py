"""A partnership's own codebooks (issue #21.2): the catalogue's ``sources.surveys.codebook_dirs`` (relative to the
catalogue file) adds codebook folders to the bundled ones, so a new cluster with a survey layout of its own is an
entry in the partnership's catalogue plus its codebook, beside that catalogue, and no change to the product. The
sample generator makes files for such a cluster, and `surveys check` parses them with that codebook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from ingest.config import CATALOGUE_PATH
from ingest.partnership import check_configuration
from ingest.surveys.spec import CODEBOOK_DIR, codebook_dirs, load_codebooks
from tools import survey_samples

REPO = Path(__file__).resolve().parents[2]
CLUSTER = {
    "id": "sport_cluster_bw",
    "name": "Sport Cluster Baden-Württemberg (SYNTHETIC)",
    "country": "DE",
    "role": "partner",
    "regions": ["DE11"],
    "seat": "DE111",
    "language": "de",
    "sectors": ["sports_technology"],
}
GERMAN_LIMESURVEY = """\
# LimeSurvey CSV, question codes + answer codes, German survey (a partnership's own codebook).
id: sme_needs.limesurvey.de
extends: sme_needs.limesurvey.base
version: 1
language: de
encoding: utf-8
delimiter: ","
labels:
  boolean: {"Y": true, "N": false, "Ja": true, "Nein": false}
  likert: {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
  missing: ["99", "-oth-", "Weiß nicht", "Nicht genutzt"]
  codes:
    size_class: {A1: micro, A2: small, A3: medium, A4: large}
    turnover_band: {T1: lt_2m, T2: 2m_10m, T3: 10m_50m, T4: gt_50m}
"""


def partnership(tmp_path: Path) -> Path:
    """A partnership folder: the bundled catalogue plus a German cluster and a codebook folder of its own."""
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    cat["clusters"].append(CLUSTER)
    cat["sources"]["surveys"]["codebook_dirs"] = ["codebooks"]
    (tmp_path / "codebooks").mkdir()
    (tmp_path / "codebooks" / "sme_needs.limesurvey.de.yml").write_text(GERMAN_LIMESURVEY, encoding="utf-8")
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_the_bundled_catalogue_reads_the_bundled_codebooks_only():
    assert codebook_dirs() == (CODEBOOK_DIR,)
    assert "sme_needs.limesurvey.de" not in {cb.id for cb in load_codebooks()}


def test_a_new_cluster_is_a_catalogue_entry_and_a_codebook_beside_it(tmp_path, monkeypatch):
    catalogue = partnership(tmp_path)
    assert check_configuration(catalogue) == []
    monkeypatch.setenv("SS4GL_CATALOGUE", str(catalogue))
    assert codebook_dirs() == (CODEBOOK_DIR, (tmp_path / "codebooks").resolve())
    german = {cb.id: cb for cb in load_codebooks()}["sme_needs.limesurvey.de"]
    bundled = {cb.id: cb for cb in load_codebooks()}["sme_needs.limesurvey.en"]
    assert german.language == "de" and german.sections.keys() == bundled.sections.keys()  # the base's columns

    spec = survey_samples.SampleSpec(CLUSTER["id"], "sme_needs", "sme_needs.limesurvey.de", 2025, 30, "umfrage.csv")
    (path,) = survey_samples.regenerate(tmp_path / "inbox", (spec,))
    assert path == tmp_path / "inbox" / CLUSTER["id"] / "sme_needs" / "umfrage.csv"
    env = {**os.environ, "SS4GL_CATALOGUE": str(catalogue)}
    run = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "surveys", "check", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "Traceback" not in out, out
    assert "sme_needs.limesurvey.de" in out and "30" in out, out

    monkeypatch.delenv("SS4GL_CATALOGUE")
    unknown = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "surveys", "check", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )  # the bundled catalogue knows neither the cluster nor its codebook
    assert unknown.returncode != 0 and "Traceback" not in unknown.stdout + unknown.stderr
