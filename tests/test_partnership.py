"""The partnership's configuration (issue #21.1): the catalogue is the one source of truth for clusters, regions and
strategy targets. `ss4gl catalogue check` names every problem in one line; ``load_partnership`` writes the catalogue
into ``raw.partnership_*`` (what dbt's reference tables are built from) as the loader role, refuses a catalogue with
problems and leaves the last good configuration in place. (The strategy baselines against the data are checked on a
real bundled night in tests/pipeline/recompute/checks.py.)"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ingest.config import CATALOGUE_PATH, load_catalogue
from ingest.partnership import ConfigurationError, check_configuration, load_partnership

REPO = Path(__file__).resolve().parents[1]


def write_catalogue(tmp_path: Path, edit) -> Path:
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    edit(cat)
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def break_everything(cat: dict) -> None:
    """One problem of each kind."""
    cat["clusters"].append(dict(cat["clusters"][0]))  # indescat twice
    cat["clusters"][1]["regions"] = ["FRK2", "FRK1", "FRX9", "FRK1"]  # no NUTS code; FRK1 twice
    cat["clusters"][2]["regions"][3] = "NL36"  # a NUTS 2024-only code declared as 2021 (the default)
    cat["clusters"][3]["regions"] = [{"code": "HU32", "nuts_version": 2016, "weight_basis": "population"}]
    cat["clusters"][4]["seat"] = "BE999"
    cat["strategy_targets"] += [
        {"cluster": "nobody", "indicator": "GDP_EUR_HAB", "baseline_year": 2020, "baseline_value": 1,
         "target_year": 2025, "target_value": 2},
        {"cluster": "epsi", "indicator": "NO_SUCH", "baseline_year": 2020, "baseline_value": 1,
         "target_year": 2025, "target_value": 2},
        {"cluster": "epsi", "indicator": "DIG_INT_HI", "baseline_year": 2025, "baseline_value": "twenty",
         "target_year": 2025, "target_value": 30},
    ]  # fmt: skip


def test_the_bundled_configuration_is_consistent():
    assert check_configuration() == []


def test_every_problem_is_one_line_naming_what_and_where(tmp_path):
    problems = check_configuration(write_catalogue(tmp_path, break_everything))
    expected = [
        "catalogue.yml: cluster id 'indescat' is defined twice",
        "catalogue.yml: cluster cluster_montagne: region FRK1 is listed twice",
        "catalogue.yml: cluster cluster_montagne: region FRX9 is no NUTS 2021 or NUTS 2024 code",
        "catalogue.yml: cluster sports_technology: region NL36 is not a NUTS 2021 code",
        "catalogue.yml: cluster mse_cluster: region HU32: NUTS version 2016 is none of 2021, 2024",
        "catalogue.yml: cluster mse_cluster: region HU32: weight_basis population is none of indicator, equal",
        "catalogue.yml: cluster epsi: seat BE999 is no NUTS 2021 or NUTS 2024 code",
        "catalogue.yml: strategy target epsi DIG_INT_HI: two targets for one cluster and indicator",
        "catalogue.yml: strategy target 8 (nobody GDP_EUR_HAB): unknown cluster nobody",
        "catalogue.yml: strategy target 9 (epsi NO_SUCH): unknown indicator NO_SUCH (seed indicators.csv)",
        "catalogue.yml: strategy target 10 (epsi DIG_INT_HI): target year 2025 is not 1 to 5 years after baseline"
        " year 2025",
        "catalogue.yml: strategy target 10 (epsi DIG_INT_HI): baseline and target values must be numbers",
    ]
    assert sorted(problems) == sorted(expected)


def test_a_target_missing_a_key_or_an_unreadable_catalogue_is_one_line(tmp_path):
    path = write_catalogue(tmp_path, lambda cat: cat["strategy_targets"][0].pop("target_year"))
    assert check_configuration(path) == ["catalogue.yml: strategy target 1 (indescat GDP_EUR_HAB): missing target_year"]
    (tmp_path / "unreadable").mkdir()
    broken = tmp_path / "unreadable" / "catalogue.yml"
    broken.write_text("clusters: [\n", encoding="utf-8")
    (problem,) = check_configuration(broken)
    assert problem.startswith("catalogue.yml: cannot be read: ") and "\n" not in problem


def test_the_command_exits_1_with_one_line_per_problem_and_no_traceback(tmp_path):
    path = write_catalogue(tmp_path, break_everything)
    ok = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "catalogue", "check", "--no-data"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "catalogue consistent", ok.stdout + ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "catalogue", "check", "--no-data", "--catalogue", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    assert len(lines) == 12 and all(line.startswith("error: ") for line in lines)
    assert "error: catalogue.yml: cluster id 'indescat' is defined twice" in lines


def _rows(url: str) -> dict[str, list[tuple]]:
    from tests.conftest import query

    return {
        "clusters": query(url, "select cluster_id, country_code, batch_id from raw.partnership_clusters order by 1"),
        "regions": query(
            url, "select cluster_id, nuts_code, nuts_version from raw.partnership_cluster_regions order by 1, 2"
        ),
        "targets": query(
            url,
            "select cluster_id, indicator_code, baseline_value, target_value from raw.partnership_strategy_targets"
            " order by 1, 2",
        ),
    }


def _build_fingerprint(url: str) -> str:
    import psycopg2

    from ingest.tasks.transform import build_fingerprint

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            return build_fingerprint(cur, "2026-12-01")
    finally:
        conn.close()


def test_the_catalogue_is_loaded_exactly_and_replaced_as_a_whole(fresh_db, tmp_path):
    rows = _rows(fresh_db)  # fresh_db loads the bundled catalogue
    assert [c[0] for c in rows["clusters"]] == sorted(c.id for c in load_catalogue().clusters)
    assert ("sports_technology", "NL36", "2024") in rows["regions"] and len(rows["regions"]) == 9
    assert ("sports_technology", "GERD_PC_GDP", Decimal("2.5"), Decimal("3.0")) in rows["targets"]
    batch = rows["clusters"][0][2]
    assert batch.startswith("partnership:") and load_partnership(fresh_db) == batch  # unchanged: nothing written

    def sixth(cat: dict) -> None:
        cat["clusters"].append(
            {"id": "sport_cluster_de", "name": "Sport Cluster Düsseldorf (synthetic)", "country": "DE",
             "regions": ["DEA1"], "seat": "DEA11", "language": "de"}
        )  # fmt: skip
        cat["strategy_targets"] = [t for t in cat["strategy_targets"] if t["cluster"] != "epsi"]

    other = load_catalogue(write_catalogue(tmp_path, sixth))
    before = _build_fingerprint(fresh_db)
    new_batch = load_partnership(fresh_db, other)
    assert _build_fingerprint(fresh_db) != before  # a changed configuration is a change of raw: the marts rebuild
    after = _rows(fresh_db)
    assert new_batch != batch and {c[2] for c in after["clusters"]} == {new_batch}
    assert ("sport_cluster_de", "DE", new_batch) in after["clusters"]
    assert ("sport_cluster_de", "DEA1", "2021") in after["regions"]
    assert [t for t in after["targets"] if t[0] == "epsi"] == []

    (tmp_path / "broken").mkdir()
    broken = load_catalogue(write_catalogue(tmp_path / "broken", break_everything))
    with pytest.raises(ConfigurationError, match=r"^configuration not loaded: catalogue.yml: .* \(and 11 more"):
        load_partnership(fresh_db, broken)
    assert _rows(fresh_db) == after  # the last good configuration stays


def test_survey_nuts3_codes_are_every_nuts3_code_of_the_nuts_seed():
    """Any partnership's members answer with NUTS 3 codes of their cluster's regions: the surveys' reference list
    holds every NUTS 3 region of both versions (the seed nuts_regions; Extra-Regio codes aside), not only today's
    clusters' regions."""
    import csv

    from ingest.partnership import SEEDS_DIR
    from ingest.surveys.spec import REFERENCE_DIR

    with (SEEDS_DIR / "nuts_regions.csv").open(encoding="utf-8", newline="") as fh:
        seed = {r["nuts_code"]: r for r in csv.DictReader(fh) if r["geo_type"] == "nuts3"}
    with (REFERENCE_DIR / "nuts3.csv").open(encoding="utf-8", newline="") as fh:
        survey = {r["code"]: r for r in csv.DictReader(fh)}
    assert survey.keys() == seed.keys() and len(survey) > 1000
    assert all(r["nuts2"] == code[:4] and r["name"] == seed[code]["nuts_name"] for code, r in survey.items())
    assert all(
        r["nuts_version"].split() == [v for v in ("2021", "2024") if seed[code][f"in_nuts_{v}"] == "true"]
        for code, r in survey.items()
    )
    assert survey["DE111"]["nuts_version"] == "2021 2024" and survey["NL361"]["nuts_version"] == "2024"


def test_values_the_build_would_refuse_are_problems_before_the_load(tmp_path):
    def odd(cat: dict) -> None:
        cat["clusters"][0] |= {"benchmark_level": "europe", "role": "partnr", "language": "dutch"}
        cat["clusters"][1]["regions"] = []
        cat["sources"]["surveys"]["codebook_dirs"] = "codebooks"

    assert sorted(check_configuration(write_catalogue(tmp_path, odd))) == [
        "catalogue.yml: cluster cluster_montagne: no regions (at least one NUTS code)",
        "catalogue.yml: cluster indescat: benchmark_level europe is none of region, eu",
        "catalogue.yml: cluster indescat: language dutch is no ISO 639-1 code (two lower-case letters)",
        "catalogue.yml: cluster indescat: role partnr is none of coordinator, partner",
        "catalogue.yml: sources.surveys.codebook_dirs is not a list of folders",
    ]
    (tmp_path / "other").mkdir()
    missing = write_catalogue(tmp_path / "other", lambda c: c["sources"]["surveys"].update(codebook_dirs=["nowhere"]))
    assert check_configuration(missing) == [
        "catalogue.yml: sources.surveys.codebook_dirs: nowhere is no folder beside the catalogue"
    ]


def test_target_figures_are_kept_exactly_as_written_and_years_are_whole(tmp_path):
    path = tmp_path / "catalogue.yml"
    text = CATALOGUE_PATH.read_text(encoding="utf-8").replace(
        "baseline_value: 2.5, target_year: 2025, target_value: 3.0",
        "baseline_value: 12345678901234567.25, target_year: 2025, target_value: 0.10",
    )
    path.write_text(text, encoding="utf-8")
    target = next(t for t in load_catalogue(path).targets if t.indicator == "GERD_PC_GDP")
    assert (target.baseline_value, target.target_value) == ("12345678901234567.25", "0.10")
    fractional = tmp_path / "fractional" / "catalogue.yml"  # another file: catalogues are read once per path
    fractional.parent.mkdir()
    fractional.write_text(
        text.replace("baseline_year: 2020, baseline_value: 30000", "baseline_year: 2020.9, baseline_value: 30000")
    )
    assert check_configuration(fractional) == [
        "catalogue.yml: strategy target 1 (indescat GDP_EUR_HAB): 2020.9 is not a year"
    ]


def test_the_configuration_id_does_not_depend_on_the_order_of_entries(tmp_path):
    from ingest.partnership import configuration_id, partnership_rows

    reordered = load_catalogue(write_catalogue(tmp_path, lambda c: c["clusters"].reverse()))
    assert configuration_id(partnership_rows(reordered)) == configuration_id(partnership_rows(load_catalogue()))


def test_an_unreadable_catalogue_is_refused_in_one_line_before_anything_is_written(fresh_db, tmp_path, monkeypatch):
    before = _rows(fresh_db)
    path = write_catalogue(tmp_path, lambda cat: cat["strategy_targets"][0].pop("target_year"))
    monkeypatch.setenv("SS4GL_CATALOGUE", str(path))
    with pytest.raises(
        ConfigurationError, match=r"^configuration not loaded: catalogue.yml: strategy target 1 .*: missing"
    ):
        load_partnership(fresh_db)
    assert _rows(fresh_db) == before


def test_the_rows_change_only_while_no_dbt_build_runs(fresh_db, tmp_path):
    import threading
    import time

    from ingest.config import DBT_BUILD_LOCK
    from ingest.warehouse import exclusive

    before = _rows(fresh_db)
    other = load_catalogue(write_catalogue(tmp_path, lambda c: c["strategy_targets"].pop()))
    with exclusive(DBT_BUILD_LOCK, fresh_db):  # a dbt build holds the lock
        loader = threading.Thread(target=load_partnership, args=(fresh_db, other))
        loader.start()
        time.sleep(1.5)
        assert loader.is_alive() and _rows(fresh_db) == before  # waiting, nothing written
    loader.join(timeout=60)
    assert not loader.is_alive() and len(_rows(fresh_db)["targets"]) == len(before["targets"]) - 1
