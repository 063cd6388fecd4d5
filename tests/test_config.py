"""The catalogue (config as data): geo modes of the Eurostat datasets."""

from __future__ import annotations

import pytest
import yaml

from ingest.config import CATALOGUE_PATH, load_catalogue


def _with_geo(tmp_path, code: str, geo: str):
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    for d in raw["eurostat_datasets"]:
        if d["code"] == code:
            d["geo"] = geo
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_geo_modes_decide_the_requested_codes(tmp_path):
    cat = load_catalogue()
    assert cat.geo_codes(cat.dataset("nama_10r_2gdp")) == []  # all_regions: no geo parameter at all
    assert cat.geo_codes(cat.dataset("nrg_ind_ren")) == cat.countries + ["EU27_2020"]
    regional = load_catalogue(_with_geo(tmp_path, "nama_10r_2gdp", "regions"))
    assert regional.geo_codes(regional.dataset("nama_10r_2gdp")) == cat.regions + cat.countries + ["EU27_2020"]


def test_unknown_geo_mode_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"catalogue.yml: unknown geo mode \(demo_r_d2jan: geo 'nuts2'\)"):
        load_catalogue(_with_geo(tmp_path, "demo_r_d2jan", "nuts2"))
