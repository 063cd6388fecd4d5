"""SDMX datasets of other providers through the statistics stage (issue #21.4): catalogue entries (providers and
datasets), fetch over real loopback HTTP, every body archived as received, the GX suite ``sdmx_observations``, the
atomic load into raw.eurostat_observations under the dataset's catalogue code, and a bad answer quarantined with one
line while the other datasets load. The bodies are real provider messages (``../shared/fixtures/sdmx``, skipped
cleanly without them) and a synthetic SDMX-CSV one, so the stage runs whatever is on the machine."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml

from ingest.config import CATALOGUE_PATH
from ingest.eurostat.replay import BUNDLED_SAMPLES, ReplayServer
from tests.conftest import SHARED, query
from tests.integration._support import isolated_stage
from tests.sdmx.provider import Provider

FIXTURES = SHARED / "fixtures" / "sdmx"
SYNTHETIC_CSV = (
    b"DATAFLOW,FREQ,REF_AREA,UNIT_MEASURE,TIME_PERIOD,OBS_VALUE,OBS_STATUS\r\n"
    b"TEST:SPORT_EMP(1.0),A,DE11,PS,2022,1234.5,A\r\n"
    b"TEST:SPORT_EMP(1.0),A,DE11,PS,2023,1301.25,P\r\n"
    b"TEST:SPORT_EMP(1.0),A,ES51,PS,2023,,M\r\n"
)


GENERIC = """<?xml version="1.0" encoding="UTF-8"?>
<message:GenericData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message"
 xmlns:generic="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic"
 xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common">
<message:Header><message:ID>{id}</message:ID><message:Test>false</message:Test>
<message:Prepared>{prepared}</message:Prepared><message:Sender id="TEST"/>
<message:Structure structureID="TEST_CLUBS" dimensionAtObservation="TIME_PERIOD"><common:Structure><URN>urn:test</URN>
</common:Structure></message:Structure></message:Header>
<message:DataSet structureRef="TEST_CLUBS">
<generic:Series><generic:SeriesKey><generic:Value id="FREQ" value="A"/><generic:Value id="REF_AREA" value="DE11"/>
</generic:SeriesKey>
<generic:Obs><generic:ObsDimension value="2022"/><generic:ObsValue value="10.5"/></generic:Obs>
<generic:Obs><generic:ObsDimension value="2023"/><generic:ObsValue value="11.25"/><generic:Attributes>
<generic:Value id="OBS_STATUS" value="P"/></generic:Attributes></generic:Obs>
</generic:Series></message:DataSet></message:GenericData>
"""  # SYNTHETIC; every answer has a new message id and time prepared, as real providers' have


def generic_answer() -> bytes:
    return GENERIC.format(id=uuid.uuid4().hex, prepared=datetime.now(UTC).isoformat(timespec="microseconds")).encode()


def routes() -> dict[str, tuple[int, str, bytes]]:
    out = {
        "/rest/data/TEST,SPORT_EMP,1.0/A..PS": (200, "application/vnd.sdmx.data+csv", SYNTHETIC_CSV),
        "/rest/data/TEST,OUTAGE/all": (200, "text/html", b"<!doctype html><html>maintenance</html>"),
        "/rest/data/TEST,BROKEN/all": (200, "application/xml", b"<message:GenericData><unclosed>"),
        "/rest/data/TEST,CLUBS/all": (200, "application/vnd.sdmx.genericdata+xml;version=2.1", generic_answer),
    }
    if FIXTURES.is_dir():
        out["/rest/data/ECB,EXR,1.0/M.USD.EUR.SP00.A"] = (
            200,
            "application/vnd.sdmx.genericdata+xml;version=2.1",
            (FIXTURES / "ecb_sdmxml21-generic_EXR_M.USD.EUR.SP00.A.xml").read_bytes(),
        )
        out["/rest/data/OECD.EDU.IMEP,DSD_EAG_SAL_TREND@DF_TCH_STA,/all"] = (
            200,
            "application/vnd.sdmx.data+csv;version=1.0.0",
            (FIXTURES / "oecd_sdmxcsv10_DF_TCH_STA.csv").read_bytes(),
        )
    return out


DATASETS = [
    {"code": "test_sport_emp", "provider": "test", "flow": "TEST,SPORT_EMP,1.0", "key": "A..PS", "theme": "sport"},
    {"code": "test_outage", "provider": "test", "flow": "TEST,OUTAGE", "theme": "sport"},
    {"code": "test_broken", "provider": "test", "flow": "TEST,BROKEN", "theme": "sport"},
    {"code": "test_missing", "provider": "test", "flow": "TEST,GONE", "theme": "sport"},
    {"code": "test_clubs", "provider": "test", "flow": "TEST,CLUBS", "theme": "sport"},
    {"code": "test_wrong_geo", "provider": "test", "flow": "TEST,CLUBS", "theme": "sport", "geo": "nuts"},
    {"code": "test_nowhere", "provider": "nobody", "flow": "TEST,CLUBS", "theme": "sport"},
]
REAL = [
    {"code": "ecb_exr_usd", "provider": "test", "flow": "ECB,EXR,1.0", "key": "M.USD.EUR.SP00.A", "geo": "currency"},
    {"code": "oecd_tch_sta", "provider": "test", "flow": "OECD.EDU.IMEP,DSD_EAG_SAL_TREND@DF_TCH_STA,"},
]


@pytest.fixture(scope="module")
def stage(warehouse_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdmx")
    provider = Provider(routes())
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    cat["sources"]["sdmx"]["providers"]["test"] = {"base_url": provider.base_url}
    cat["sdmx_datasets"] = DATASETS + (REAL if FIXTURES.is_dir() else [])
    catalogue = tmp / "catalogue.yml"
    catalogue.write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
    with (
        ReplayServer(BUNDLED_SAMPLES) as eurostat,
        isolated_stage(
            warehouse_url,
            tmp,
            SS4GL_CATALOGUE=str(catalogue),
            EUROSTAT_BASE_URL=eurostat.base_url,
            SS4GL_RETRY_DELAY_SECONDS="0",
        ) as st,
    ):
        from ingest.tasks import eurostat as stats
        from ingest.tasks import gate
        from ingest.tasks.common import RunContext

        def night(date: str) -> dict:
            ctx = RunContext(run_id=f"test_sdmx_{uuid.uuid4().hex[:8]}", logical_date=date)
            codes = stats.plan(ctx)
            sdmx_codes = [c for c in codes if c.startswith(("test_", "ecb_", "oecd_"))]
            extracted = {c: stats.extract(ctx, c) for c in sdmx_codes}
            validated = gate.validate(ctx, stats.SOURCE, stats.prepare)
            loaded = gate.load(ctx, stats.SOURCE, after_load=stats.remember_loaded)
            return {"codes": codes, "extracted": extracted, "validated": validated, "loaded": loaded}

        first = night("2026-11-26")
        second = night("2026-11-27")
        yield {"url": st.url, "first": first, "second": second, "provider": provider}
    provider.close()


def _rows(url: str, dataset: str) -> list[tuple]:
    return query(
        url,
        "select geo, time, value, obs_status from raw.eurostat_observations where dataset = %s order by geo, time",
        dataset,
    )


def test_every_sdmx_dataset_is_planned_and_fetched_over_http(stage):
    planned = set(stage["first"]["codes"])
    assert {d["code"] for d in DATASETS} - {"test_nowhere"} <= planned
    assert "/rest/data/TEST,SPORT_EMP,1.0/A..PS" in stage["provider"].paths


def test_a_good_dataset_loads_exactly_under_its_catalogue_code(stage):
    assert [(g, t, None if v is None else str(v), s) for g, t, v, s in _rows(stage["url"], "test_sport_emp")] == [
        ("DE11", "2022", "1234.5", "A"),
        ("DE11", "2023", "1301.25", "P"),
        ("ES51", "2023", None, "M"),
    ]
    dims = query(
        stage["url"], "select distinct dims::text from raw.eurostat_observations where dataset = 'test_sport_emp'"
    )
    assert dims == [('{"freq": "A", "unit_measure": "PS"}',)]


def test_bad_answers_are_quarantined_with_one_line_and_the_rest_loads(stage):
    rows = query(
        stage["url"],
        "select object, status, reason from audit.batches where object like 'test\\_%%' order by object",
    )
    status = {obj: (st, reason) for obj, st, reason in rows}
    assert status["test_sport_emp"][0] == "loaded"
    for bad, words in (
        ("test_outage", "HTML page"),
        ("test_broken", "test_broken"),
        ("test_missing", "HTTP 404"),
        ("test_wrong_geo", "column nuts: geo dimension nuts (catalogue `geo`): the message has no such dimension"),
    ):
        st, reason = status[bad]
        assert st == "quarantined" and words in reason and "\n" not in reason, (bad, st, reason)
    assert _rows(stage["url"], "test_outage") == [] and _rows(stage["url"], "test_missing") == []


def test_every_body_is_archived_as_received(stage):
    from ingest.archive import Archive

    shas = query(
        stage["url"],
        "select distinct sha256 from audit.fetches where source = 'eurostat' and object = 'test_sport_emp'",
    )
    assert shas and any(Archive().get(sha) == SYNTHETIC_CSV for (sha,) in shas)


def test_an_unchanged_dataset_is_not_loaded_again(stage):
    loaded = query(
        stage["url"],
        "select count(*) from audit.run_batches where object = 'test_sport_emp' and status = 'loaded'"
        " and rows_loaded > 0",
    )
    assert loaded == [(1,)]  # the second night fetched the same content: nothing to load
    assert len(_rows(stage["url"], "test_sport_emp")) == 3


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures/sdmx is not on this machine")
def test_real_provider_messages_load_exactly(stage):
    import csv
    from collections import Counter
    from decimal import Decimal

    ecb = _rows(stage["url"], "ecb_exr_usd")
    assert len(ecb) == 252 and {g for g, *_ in ecb} == {"USD"}
    with (FIXTURES / "oecd_sdmxcsv10_DF_TCH_STA.csv").open(encoding="utf-8", newline="") as fh:
        source = list(csv.DictReader(fh))
    oecd = _rows(stage["url"], "oecd_tch_sta")
    assert len(oecd) == len(source) == 1020

    def exact(value) -> str | None:
        return None if value in (None, "") else format(Decimal(value).normalize(), "f")

    expected = Counter(
        (r["REF_AREA"], r["TIME_PERIOD"], exact(r["OBS_VALUE"]), r["OBS_STATUS"] or None) for r in source
    )
    assert Counter((g, t, exact(v), s) for g, t, v, s in oecd) == expected


def test_an_answer_differing_only_in_its_header_is_not_loaded_again(stage):
    """Each answer of TEST,CLUBS has a new message id and time prepared: new bytes, the same observations."""
    fetched = query(stage["url"], "select count(distinct sha256) from audit.fetches where object = 'test_clubs'")
    assert fetched == [(2,)]  # both nights' bodies archived as received
    assert query(stage["url"], "select count(*) from audit.batches where object = 'test_clubs'") == [(1,)]
    checks = query(
        stage["url"], "select decision from audit.dataset_checks where object = 'test_clubs' order by checked_at"
    )
    assert [d for (d,) in checks] == ["fetch", "skip"]
    assert _rows(stage["url"], "test_clubs") == [
        ("DE11", "2022", Decimal("10.5"), None),
        ("DE11", "2023", Decimal("11.25"), "P"),
    ]


def test_a_dataset_of_an_unknown_provider_is_skipped_with_its_reason(stage):
    assert "test_nowhere" not in stage["first"]["codes"]
    (reason,) = query(stage["url"], "select distinct reason from audit.dataset_checks where object = 'test_nowhere'")
    assert reason == ("unknown SDMX provider nobody (ss4gl catalogue check)",)


def test_a_replay_reads_a_batch_as_it_was_received_whatever_the_catalogue_says_now(stage, monkeypatch):
    """Backfills replay archived batches: an SDMX batch is read as SDMX (its recorded reading), even once the
    dataset has left the catalogue."""
    from ingest.tasks import eurostat as stats
    from ingest.tasks.common import Batch

    ((obj, shas, meta),) = query(
        stage["url"], "select object, sha256, meta from audit.batches where object = 'test_sport_emp'"
    )
    monkeypatch.delenv("SS4GL_CATALOGUE")  # the bundled catalogue: no SDMX dataset at all
    prepared = stats.prepare(Batch(source=stats.SOURCE, object=obj, sha256=list(shas), meta=meta))
    assert prepared.checks[0][0] == "sdmx_observations"
    assert sorted(prepared.tables["eurostat_observations"]["geo"]) == ["DE11", "DE11", "ES51"]
