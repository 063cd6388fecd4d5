"""The SDMX decoder (#21.4) against real provider messages (``../shared/fixtures/sdmx``, see its README): every
cell, value and status, checked against an independent reader (the reference library sdmx1 where it reads the
message, Python's csv module for SDMX-CSV, the README's figures otherwise); and ``ss4gl sdmx decode``'s one-line
errors and input bounds."""

from __future__ import annotations

import csv
import gzip
import io
import math
import subprocess
import sys
import warnings

import pandas as pd
import pytest

from ingest.sdmx.decode import decode_sdmx, sniff
from ingest.sdmx.errors import SdmxError
from ingest.sdmx.structure import read_dsd
from tests.eurostat.eurostat_testutil import REPO, shared_dir

SHARED = shared_dir()
FIX = SHARED / "fixtures" / "sdmx" if SHARED else None
needs_fixtures = pytest.mark.skipif(FIX is None or not FIX.is_dir(), reason="../shared/fixtures/sdmx not present")
SS4GL = [sys.executable, "-m", "ingest.cli"]
ISTAT_DSD = "istat_sdmxml21-ss_22_289.dsd.xml"


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


def missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def rows(frame) -> list[tuple]:
    """(dimension codes in column order, time, value, obs_status, conf_status) per row, NaN/NA as None."""
    tail = ("dataset", "time", "value", "obs_status", "conf_status", "source_updated_at")
    dims = [c for c in frame.columns if c not in tail]
    cell = lambda v: None if missing(v) else v  # noqa: E731
    return [
        (
            tuple(cell(rec[d]) for d in dims),
            cell(rec["time"]),
            cell(rec["value"]),
            cell(rec["obs_status"]),
            cell(rec["conf_status"]),
        )
        for rec in frame.to_dict("records")
    ]


def sdmx1_rows(name: str, structure: str | None = None) -> list[tuple]:
    """The same tuples as read by the reference library sdmx1 (its own XML/JSON readers)."""
    import sdmx

    from ingest.eurostat.frames import normalise_period

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {}
        if structure:
            kw["structure"] = next(iter(sdmx.read_sdmx(FIX / structure).structure.values()))
        msg = sdmx.read_sdmx(FIX / name, **kw)
    out = []
    for ds in msg.data:
        for obs in ds.obs:
            key = {k: v.value for k, v in obs.key.values.items()}
            attrs = {k: getattr(v.value, "id", v.value) for k, v in obs.attrib.items()}
            time = next((key.pop(t) for t in ("TIME_PERIOD", "TIME") if t in key), None)
            value = None if missing(obs.value) else float(obs.value)
            out.append(
                (
                    tuple(key.values()),
                    normalise_period(str(time)) if time else None,
                    value,
                    attrs.get("OBS_STATUS"),
                    attrs.get("CONF_STATUS"),
                )
            )
    return out


# ---------------------------------------------------------------------------------------- against sdmx1
@needs_fixtures
@pytest.mark.parametrize(
    ("name", "dsd", "n"),
    [
        ("ecb_sdmxml21-generic_EXR_M.USD.EUR.SP00.A.xml", None, 252),
        ("istat_sdmxml21-ss_22_289.xml", ISTAT_DSD, 8),
        ("estat_sdmxml21-ss_NRG_BAL_S.xml", None, 33),
        ("insee_sdmxml21-ss_SERIES_BDM.xml", None, 148),
        ("oecd_sdmxjson10_PART2.json", None, 7),
    ],
)
def test_every_observation_as_the_reference_library_reads_it(name, dsd, n):
    ours = rows(decode_sdmx(fixture(name), read_dsd(fixture(dsd)) if dsd else None))
    assert len(ours) == n
    assert sorted(ours, key=repr) == sorted(sdmx1_rows(name, dsd), key=repr)


@needs_fixtures
def test_generic_message_keeps_the_key_order_and_the_status():
    frame = decode_sdmx(fixture("ecb_sdmxml21-generic_EXR_M.USD.EUR.SP00.A.xml"))
    assert list(frame.columns[:6]) == ["dataset", "freq", "currency", "currency_denom", "exr_type", "exr_suffix"]
    assert set(frame["dataset"]) == {"ecb_exr1"}
    assert (frame["time"].iloc[0], frame["time"].iloc[-1]) == ("1999-01", "2019-12")
    assert set(frame["obs_status"]) == {"A"}


@needs_fixtures
def test_structure_specific_with_and_without_its_dsd():
    with_dsd = decode_sdmx(fixture("istat_sdmxml21-ss_22_289.xml"), read_dsd(fixture(ISTAT_DSD)))
    assert list(with_dsd.columns[1:7]) == ["freq", "ref_area", "data_type", "sex", "age", "marital_status"]
    assert set(with_dsd["dataset"]) == {"22_289"}
    assert with_dsd.loc[with_dsd["time"] == "2022", "obs_status"].tolist() == ["e", "e"]
    assert with_dsd["obs_status"].isna().sum() == 6
    # INSEE: no DSD exists; every series attribute is read as a dimension, the statuses stay INSEE's own codes
    insee = decode_sdmx(fixture("insee_sdmxml21-ss_SERIES_BDM.xml"))
    assert {"idbank", "freq", "title_fr"} <= set(insee.columns)
    assert insee["obs_status"].value_counts().to_dict() == {"A": 147, "P": 1}
    quarterly = insee[insee["freq"] == "T"]["time"]
    assert len(quarterly) == 33 and quarterly.str.fullmatch(r"\d{4}-Q[1-4]").all()


# ---------------------------------------------------------------------------------------- SDMX-CSV
def csv_rows(body: bytes, dims: list[str], time: str | None, status: str | None, conf: str | None) -> list[tuple]:
    """The tuples as Python's csv module reads the file."""
    out = []
    for rec in csv.DictReader(io.StringIO(body.decode("utf-8-sig"))):
        value = rec["OBS_VALUE"]
        out.append(
            (
                tuple(rec[d] for d in dims),
                rec[time] if time else None,
                float(value) if value else None,
                (rec.get(status) or None) if status else None,
                (rec.get(conf) or None) if conf else None,
            )
        )
    return out


@needs_fixtures
def test_sdmx_csv_10_of_the_oecd_every_row_and_status():
    body = fixture("oecd_sdmxcsv10_DF_TCH_STA.csv")
    frame = decode_sdmx(body)
    header = next(csv.reader(io.StringIO(body.decode())))
    dims = header[1 : header.index("TIME_PERIOD")]
    assert list(frame.columns[1 : 1 + len(dims)]) == [d.lower() for d in dims]
    assert rows(frame) == csv_rows(body, dims, "TIME_PERIOD", "OBS_STATUS", None)
    assert frame["obs_status"].value_counts().to_dict() == {"A": 701, "L": 176, "O": 78, "M": 46, "B": 19}
    assert frame["value"].isna().sum() == 300
    assert set(frame["dataset"]) == {"dsd_eag_sal_trend@df_tch_sta"}


@needs_fixtures
def test_sdmx_csv_10_of_eurostat_with_labels_and_its_update_stamp():
    body = fixture("estat_sdmxcsv10-labels_EI_BPM6CA_Q.csv")
    frame = decode_sdmx(body)
    dims = ["freq", "unit", "s_adj", "sector10", "sectpart", "partner", "stk_flow", "bop_item", "geo"]
    assert rows(frame) == [
        (d, t if t is None else t, v, s, c)
        for d, t, v, s, c in csv_rows(body, dims, "TIME_PERIOD", "OBS_FLAG", "CONF_STATUS")
    ]
    assert "Euro area – 20 countries (from 2023)" in set(frame["geo"])  # labels, non-ASCII dash kept
    assert set(frame["source_updated_at"]) == {"2025-10-30T23:00:00+01:00"}
    assert set(frame["dataset"]) == {"ei_bpm6ca_q"}


@needs_fixtures
def test_sdmx_csv_20():
    body = fixture("twg_sdmxcsv20_NA_MAIN_example-01.csv")
    frame = decode_sdmx(body)
    assert rows(frame) == csv_rows(body, ["DIM_1", "DIM_2", "DIM_3"], None, None, None)
    assert set(frame["dataset"]) == {"na_main"}
    with pytest.raises(SdmxError, match="ACTION D"):
        decode_sdmx(body.replace(b",I,", b",D,"))


# ---------------------------------------------------------------------------------------- the others
@needs_fixtures
def test_sdmx_ml_20_compact_with_an_empty_series():
    frame = decode_sdmx(fixture("oecd_sdmxml20-compact_HH_DASH.xml"))
    assert rows(frame)[:1] == [(("FRA", "RHHGDI", "Q", "P3M", "GRWH", "0"), "2007-Q2", 0.39, None, None)]
    assert len(frame) == 6 and set(frame["location"]) == {"FRA", "BEL"}  # EST has no observation
    assert frame.loc[frame["location"] == "BEL", "value"].tolist() == [-0.73, 1.4, -0.42]
    assert set(frame["dataset"]) == {"hh_dash"}


@needs_fixtures
def test_sdmx_json_20_time_series():
    frame = decode_sdmx(fixture("twg_sdmxjson20_EXR_time-series.json"))
    assert rows(frame) == [
        (("D", "NZD", "EUR", "SP00", "A"), "2013-01-18", 1.5931, "A", None),
        (("D", "NZD", "EUR", "SP00", "A"), "2013-01-21", 1.5925, "A", None),
        (("D", "RUB", "EUR", "SP00", "A"), "2013-01-18", 40.3426, "A", None),
        (("D", "RUB", "EUR", "SP00", "A"), "2013-01-21", 40.3, "A", None),
    ]
    assert list(frame.columns[1:6]) == ["freq", "currency", "currency_denom", "exr_type", "exr_suffix"]  # key order
    assert set(frame["dataset"]) == {"exr"}


# ---------------------------------------------------------------------------------------- one line, bounded
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty body"),
        (b"<html><body>Service unavailable</body></html>", "HTML page"),
        (b"geo,time,value\nES51,2020,1\n", "not SDMX data"),
        (b"<message:Structure xmlns:message='x'/>", "not an SDMX-ML data message"),
        (b"<GenericData><DataSet><Obs><ObsValue value='1'", "not well-formed XML"),
        (
            b"<StructureSpecificData><DataSet><Series A='1'><Obs TIME_PERIOD='2020' OBS_VALUE='abc'/></Series>"
            b"</DataSet></StructureSpecificData>",
            "observation 1 has a value that is not a number",
        ),
        (
            b'{"dataSets": [{"observations": {"0": ["x"]}}], "structure": {"dimensions": {"observation": '
            b'[{"id": "A", "values": [{"id": "a"}]}]}}}',
            "not a number",
        ),
        (
            b'{"dataSets": [{"observations": {"7": [1]}}], "structure": {"dimensions": {"observation": '
            b'[{"id": "A", "values": [{"id": "a"}]}]}}}',
            "no value 7 of dimension A",
        ),
        (
            b'{"dataSets": [{"observations": {"-1": [1]}}], "structure": {"dimensions": {"observation": '
            b'[{"id": "A", "values": [{"id": "a"}]}]}}}',
            "no value -1 of dimension A",
        ),
        (
            b'{"dataSets": [{"series": {"0": 5}}], "structure": {"dimensions": {"series": [{"id": "A", "values": '
            b'[{"id": "a"}]}]}}}',
            "malformed sdmx-json message",
        ),
        (b'{"dataSets": [], "structures": {"a": 1}}', "malformed sdmx-json message"),
        (
            b'<!DOCTYPE x [<!ENTITY e "2020">]><StructureSpecificData><DataSet><Series A="1"><Obs TIME_PERIOD="&e;" '
            b'OBS_VALUE="1"/></Series></DataSet></StructureSpecificData>',
            "declares a DTD",
        ),
        (b'DATAFLOW,"OBS_VALUE\n', "malformed SDMX-CSV"),
        (b"DATAFLOW,A,TIME_PERIOD\nX:Y(1.0),a,2020\n", "without an OBS_VALUE column"),
        (b"DATAFLOW,A,TIME_PERIOD,OBS_VALUE\nX:Y(1.0),a,2020,n/a\n", "not a number"),
    ],
)
def test_what_is_not_sdmx_data_is_one_line(body, problem):
    with pytest.raises(SdmxError, match=problem) as got:
        decode_sdmx(body)
    assert "\n" not in str(got.value)


def test_the_dimension_at_the_observation_need_not_be_the_time():
    """dimensionAtObservation="REF_AREA": the areas are at the observation, the time in the series key."""
    header = '<Header><Structure structureID="S" dimensionAtObservation="REF_AREA"/></Header>'
    plain = (
        f"<StructureSpecificData>{header}<DataSet><Series FREQ='A' TIME_PERIOD='2020'>"
        '<Obs REF_AREA="DE" OBS_VALUE="1" OBS_STATUS="p"/><Obs REF_AREA="FR" OBS_VALUE="2"/></Series>'
        "</DataSet></StructureSpecificData>"
    )
    generic = (
        f"<GenericData>{header}<DataSet><Series><SeriesKey><Value id='FREQ' value='A'/>"
        "<Value id='TIME_PERIOD' value='2020'/></SeriesKey><Obs><ObsDimension value='DE'/><ObsValue value='1'/>"
        "<Attributes><Value id='OBS_STATUS' value='p'/></Attributes></Obs><Obs><ObsDimension value='FR'/>"
        "<ObsValue value='2'/></Obs></Series></DataSet></GenericData>"
    )
    for body in (plain, generic):
        frame = decode_sdmx(body.encode())
        assert list(frame.columns[1:3]) == ["freq", "ref_area"], body
        assert rows(frame) == [(("A", "DE"), "2020", 1.0, "p", None), (("A", "FR"), "2020", 2.0, None, None)], body


def test_cdata_comments_and_empty_series_keys_in_generic_messages():
    body = (
        b"<?xml version='1.0'?><!-- a comment <Obs> --><GenericData><DataSet><Series><SeriesKey/>"
        b"<Obs><Time><![CDATA[2020]]></Time><ObsValue value='1&amp;'/></Obs></Series></DataSet></GenericData>"
    )
    with pytest.raises(SdmxError, match="not a number: '1&'"):
        decode_sdmx(body)
    frame = decode_sdmx(body.replace(b"1&amp;", b"1.5"))
    assert rows(frame) == [((), "2020", 1.5, None, None)]


def test_a_dsd_measure_dimension_is_a_dimension():
    dsd = read_dsd(
        b"<Structure><Structures><DataStructures><DataStructure id='D'><DataStructureComponents><DimensionList>"
        b"<Dimension id='GEO' position='1'/><MeasureDimension id='MEASURE' position='2'/>"
        b"<TimeDimension id='TIME_PERIOD' position='3'/></DimensionList></DataStructureComponents></DataStructure>"
        b"</DataStructures></Structures></Structure>"
    )
    assert dsd.key_order == ["GEO", "MEASURE", "TIME_PERIOD"]


def test_sniff_tells_the_syntaxes_apart():
    assert sniff(b"\xef\xbb\xbf<message:CompactData/>") == "sdmx-ml"
    assert sniff(b' {"data": {}}') == "sdmx-json"
    assert sniff(b"STRUCTURE,STRUCTURE_ID,ACTION,A,OBS_VALUE\n") == "sdmx-csv"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [*SS4GL, "sdmx", "decode", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@needs_fixtures
def test_cli_writes_the_long_table_of_a_gzipped_message_with_its_dsd(tmp_path):
    gz = tmp_path / "istat.xml.gz"
    gz.write_bytes(gzip.compress(fixture("istat_sdmxml21-ss_22_289.xml")))
    out = tmp_path / "out.csv"
    res = run_cli(str(gz), "--dsd", str(FIX / ISTAT_DSD), "-o", str(out))
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert (
        lines[0] == "dataset,freq,ref_area,data_type,sex,age,marital_status,time,value,obs_status,conf_status,"
        "source_updated_at"
    )
    assert lines[1] == "22_289,A,IT,JAN,1,TOTAL,99,2019,29131195.0,,,"
    assert len(lines) == 9 and "wrote 8 rows" in res.stderr


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "page.xml"
    bad.write_bytes(b"<GenericData><DataSet>")
    dsd = tmp_path / "dsd.xml"
    dsd.write_bytes(b"<Structure><Structures/></Structure>")
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"DATAFLOW,OBS_VALUE\n" + b"0" * (300 << 20), compresslevel=9))
    for args, problem in [
        ((str(bad),), f"error: {bad}: not well-formed XML"),
        ((str(tmp_path / "missing.xml"),), "No such file or directory"),
        ((str(bad), "--dsd", str(dsd)), f"error: {dsd}: the structure message holds no DataStructure"),
        ((str(bomb),), "gzip body expands beyond"),
    ]:
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert problem in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "Traceback" not in res.stderr


def test_a_message_beyond_the_configured_size_is_refused_before_it_is_read(tmp_path):
    catalogue = tmp_path / "catalogue.yml"
    import yaml

    from ingest.config import CATALOGUE_PATH

    doc = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    doc.setdefault("sources", {})["sdmx"] = {"max_body_bytes": 100}
    catalogue.write_text(yaml.safe_dump(doc), encoding="utf-8")
    big = tmp_path / "big.csv"
    big.write_bytes(b"DATAFLOW,OBS_VALUE\n" + b"X:Y(1.0),1\n" * 20)
    res = run_cli(str(big), env={"SS4GL_CATALOGUE": str(catalogue)})
    assert res.returncode == 2 and "beyond the 100 bytes an SDMX message may have" in res.stderr, res.stderr
