"""A structure-specific SDMX answer is read with its data structure definition (DSD), fetched from the provider in
the same extract (SDMX 2.1 REST ``dataflow/<agency>/<id>/<version>?references=datastructure``) and archived as
received, so a series attribute is never taken for a dimension; a DSD the provider cannot give quarantines the
batch in one line. Real loopback HTTP, real Postgres and GX; the ISTAT capture of ``../shared/fixtures/sdmx`` with a
series attribute added (UNIT_MULT, as INSEE's series carry), skipped cleanly without it."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from ingest.config import CATALOGUE_PATH
from ingest.eurostat.replay import BUNDLED_SAMPLES, ReplayServer
from tests.conftest import SHARED, query
from tests.integration._support import isolated_stage
from tests.sdmx.provider import Provider

FIXTURES = SHARED / "fixtures" / "sdmx"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures/sdmx is not on this machine")


@pytest.fixture(scope="module")
def night(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdmx_dsd")
    data = (FIXTURES / "istat_sdmxml21-ss_22_289.xml").read_bytes().replace(b"<Series ", b'<Series UNIT_MULT="0" ')
    dsd = (FIXTURES / "istat_sdmxml21-ss_22_289.dsd.xml").read_bytes()
    ss = "application/vnd.sdmx.structurespecificdata+xml;version=2.1"
    provider = Provider(
        {
            "/rest/data/IT1,22_289,1.0/all": (200, ss, data),
            "/rest/dataflow/IT1/22_289/1.0": (200, "application/vnd.sdmx.structure+xml;version=2.1", dsd),
            "/rest/data/IT1,NO_DSD,1.0/all": (200, ss, data),  # its dataflow: 404
        }
    )
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    cat["sources"]["sdmx"]["providers"]["istat_test"] = {"base_url": provider.base_url}
    cat["sdmx_datasets"] = [
        {"code": "istat_pop", "provider": "istat_test", "flow": "IT1,22_289,1.0", "theme": "population"},
        {"code": "istat_no_dsd", "provider": "istat_test", "flow": "IT1,NO_DSD,1.0", "theme": "population"},
    ]
    catalogue = tmp / "catalogue.yml"
    catalogue.write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
    try:
        with (
            ReplayServer(BUNDLED_SAMPLES) as eurostat,
            isolated_stage(
                warehouse_url, tmp, SS4GL_CATALOGUE=str(catalogue), EUROSTAT_BASE_URL=eurostat.base_url
            ) as st,
        ):
            from ingest.tasks import eurostat as stats
            from ingest.tasks import gate
            from ingest.tasks.common import RunContext

            ctx = RunContext(run_id=f"test_dsd_{uuid.uuid4().hex[:8]}", logical_date="2026-11-30")
            for code in ("istat_pop", "istat_no_dsd"):
                stats.extract(ctx, code)
            gate.validate(ctx, stats.SOURCE, stats.prepare)
            gate.load(ctx, stats.SOURCE, after_load=stats.remember_loaded)
            yield {"url": st.url, "dsd": dsd, "paths": provider.paths}
    finally:
        provider.close()


def test_the_dsd_is_fetched_archived_and_tells_dimensions_from_attributes(night):
    from ingest.archive import Archive

    assert "/rest/dataflow/IT1/22_289/1.0?references=datastructure" in night["paths"]
    ((meta,),) = query(night["url"], "select meta->'sdmx' from audit.batches where object = 'istat_pop'")
    assert meta["dimensions"] == ["FREQ", "REF_AREA", "DATA_TYPE", "SEX", "AGE", "MARITAL_STATUS"]
    assert meta["time_dimension"] == "TIME_PERIOD"
    assert Archive().get(meta["structure"]) == night["dsd"]  # archived as received
    dims = query(night["url"], "select distinct dims::text from raw.eurostat_observations where dataset = 'istat_pop'")
    assert [json.loads(d) for (d,) in dims] and all("unit_mult" not in json.loads(d) for (d,) in dims)
    assert all({"freq", "data_type", "sex", "age", "marital_status"} <= json.loads(d).keys() for (d,) in dims)
    rows = query(night["url"], "select count(*), min(geo) from raw.eurostat_observations where dataset = 'istat_pop'")
    assert rows == [(8, "IT")]


def test_a_structure_the_provider_cannot_give_quarantines_the_batch_in_one_line(night):
    ((status, reason),) = query(night["url"], "select status, reason from audit.batches where object = 'istat_no_dsd'")
    assert status == "quarantined" and "\n" not in reason
    assert "its data structure (DSD) could not be read from istat_test (HTTP 404" in reason
    assert query(night["url"], "select count(*) from raw.eurostat_observations where dataset = 'istat_no_dsd'") == [
        (0,)
    ]
