"""Synthetic samples: one per catalogue dataset, deterministic, Eurostat-shaped, plausible, small."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from ingest.config import load_catalogue
from ingest.eurostat.decode import decode
from ingest.eurostat.toc import parse_toc
from tools.eurostat_samples import (
    LEGACY_LAST_YEAR,
    NUTS_2024_RECODED,
    OUT_DIR,
    SYNTHETIC,
    build,
    generate,
    sample_geos,
)

CATALOGUE = load_catalogue()
GENERATED = generate()


def test_files_on_disk_equal_fresh_output():
    on_disk = {p.name: p.read_bytes() for p in OUT_DIR.iterdir() if p.is_file()}
    assert on_disk.keys() == GENERATED.keys(), "run: python -m tools.eurostat_samples"
    stale = [name for name in GENERATED if on_disk[name] != GENERATED[name]]
    assert not stale, f"stale samples {stale}: run python -m tools.eurostat_samples"
    assert GENERATED == generate()  # deterministic
    assert sum(len(b) for b in GENERATED.values()) < 2_000_000


@pytest.mark.parametrize("ds", CATALOGUE.datasets, ids=lambda d: d.code)
def test_sample_shape_and_values(ds):
    doc = orjson.loads(GENERATED[f"{ds.code}.json"])
    assert doc["version"] == "2.0" and doc["class"] == "dataset" and SYNTHETIC in doc["label"]
    assert doc["id"][0] == "freq" and doc["id"][-2:] == ["geo", "time"]
    assert [len(doc["dimension"][d]["category"]["index"]) for d in doc["id"]] == doc["size"]
    first, others, recoded = sample_geos(ds, CATALOGUE)
    assert list(doc["dimension"]["geo"]["category"]["index"]) == first + others + recoded
    partner_regions = [r for r in CATALOGUE.regions if r not in NUTS_2024_RECODED.values()]
    assert first == (partner_regions if ds.geo != "countries" else []) + CATALOGUE.countries + ["EU27_2020"]
    if ds.geo == "all_regions":  # no geo filter: every EU27 NUTS 2 region (2021 and 2024) besides the partners'
        assert CATALOGUE.geo_codes(ds) == [] and len(set(first) | set(others)) == 242 + 6
        assert recoded == ["NL35", "NL36"] and "NL36" in CATALOGUE.regions
    else:
        assert first + recoded == CATALOGUE.geo_codes(ds) and others == [] and recoded == []
    for dim, wanted in ds.filters.items():
        assert list(doc["dimension"][dim]["category"]["index"]) == wanted
    notes = {a["type"]: a for a in doc["extension"]["annotation"]}
    assert int(notes["OBS_COUNT"]["title"]) == len(doc["value"]) and SYNTHETIC in notes["DISCLAIMER"]["title"]
    df = decode(GENERATED[f"{ds.code}.json"], ds.code)
    assert df["dataset"].eq(ds.code).all() and df["source_updated_at"].notna().all()
    assert df["value"].notna().sum() == len(doc["value"])
    assert df["value"].isna().any() and df["obs_status"].notna().any()  # flags on empty cells too
    unit = df["unit"] if "unit" in df else None
    if unit is not None:
        pct = df[unit.str.startswith("PC")]["value"].dropna()
        assert ((pct >= 0) & (pct <= 100)).all()
        eur = df[unit == "EUR_HAB"]["value"].dropna()
        assert ((eur >= 5_000) & (eur <= 150_000)).all()


def test_confidential_cells_in_business_statistics():
    df = decode(GENERATED["sbs_r_nuts2021.json"], "sbs_r_nuts2021")
    conf = df[df["conf_status"] == "C"]
    assert len(conf) > 0 and conf["value"].isna().all()


def test_regional_gdp_consistent_with_population():
    gdp = decode(GENERATED["nama_10r_2gdp.json"], "nama_10r_2gdp").set_index(["unit", "geo", "time"])["value"]
    pop = decode(GENERATED["demo_r_d2jan.json"], "demo_r_d2jan").set_index(["geo", "time"])["value"]
    for geo in ("ES51", "NL41", "EU27_2020"):
        implied = gdp[("MIO_EUR", geo, "2020")] * 1e6 / gdp[("EUR_HAB", geo, "2020")]
        assert np.isclose(implied, pop[(geo, "2020")], rtol=0.1)


def test_toc_lists_every_dataset():
    toc = parse_toc(GENERATED["toc.txt"])
    for ds in CATALOGUE.datasets:
        assert toc[ds.code].type == "dataset" and toc[ds.code].last_update is not None


def test_all_regions_sample_keeps_the_partner_values():
    """The other EU regions come from their own random stream: the partners' cells equal a regions-only sample."""
    import dataclasses

    ds = CATALOGUE.dataset("nama_10r_2gdp")
    assert ds.geo == "all_regions"
    full = decode(orjson.dumps(build(ds, CATALOGUE)), ds.code)
    partners = decode(orjson.dumps(build(dataclasses.replace(ds, geo="regions"), CATALOGUE)), ds.code)
    keys = ["unit", "geo", "time"]
    mine = full[full["geo"].isin(set(partners["geo"]))].sort_values(keys).reset_index(drop=True)
    assert mine.equals(partners.sort_values(keys).reset_index(drop=True))
    assert full["geo"].nunique() == 250 and full.groupby("geo")["value"].max().nunique() > 200  # regions differ


@pytest.mark.parametrize("ds", [d for d in CATALOGUE.datasets if d.geo == "all_regions"], ids=lambda d: d.code)
def test_regional_samples_are_recoded_to_nuts_2024(ds):
    """Like a Eurostat dataset re-coded to NUTS 2024: the new codes (NL35, NL36) carry every year, the NUTS 2021
    codes they replaced (NL31, NL33) only the years up to LEGACY_LAST_YEAR."""
    df = decode(GENERATED[f"{ds.code}.json"], ds.code)
    years = df[df["value"].notna()].groupby("geo")["time"].agg(lambda t: sorted(int(y) for y in t))
    for old, new in NUTS_2024_RECODED.items():
        assert max(years[new]) > LEGACY_LAST_YEAR
        assert old not in years or max(years[old]) <= LEGACY_LAST_YEAR
    if min(years["NL41"]) <= LEGACY_LAST_YEAR:  # datasets starting later have no legacy years at all
        assert {"NL31", "NL33"} <= set(years.index)
