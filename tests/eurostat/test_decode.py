"""Decoder exactness: hand-written JSON-stat, the real TSV capture, SDMX-CSV, and bodies that are not data."""

from __future__ import annotations

import gzip

import numpy as np
import orjson
import pandas as pd
import pytest

from ingest.eurostat.decode import decode, split_flag
from ingest.eurostat.errors import EurostatPayloadError
from ingest.eurostat.replay import BUNDLED_SAMPLES, async_warning, error_json, jsonstat_to_tsv, sync_envelope
from tests.eurostat.eurostat_testutil import shared_dir

COLUMNS = [
    "dataset",
    "freq",
    "unit",
    "geo",
    "time",
    "value",
    "obs_status",
    "conf_status",
    "source_updated_at",
]


def cube(value, status=None, index_as_array=False) -> dict:
    """freq(1) × unit(1) × geo(2) × time(3) = 6 cells; geo index deliberately not in dict order."""
    geo_index = ["ES51", "NL41"] if index_as_array else {"NL41": 1, "ES51": 0}
    doc = {
        "version": "2.0",
        "class": "dataset",
        "label": "test",
        "source": "ESTAT",
        "updated": "2026-02-10T11:00:00+0100",
        "id": ["freq", "unit", "geo", "time"],
        "size": [1, 1, 2, 3],
        "dimension": {
            "freq": {"category": {"index": {"A": 0}}},
            "unit": {"category": {"index": ["PC"] if index_as_array else {"PC": 0}}},
            "geo": {"category": {"index": geo_index}},
            "time": {"category": {"index": {"2021": 1, "2020": 0, "2022": 2}}},
        },
        "value": value,
    }
    if status is not None:
        doc["status"] = status
    return doc


def rows(df: pd.DataFrame) -> list[tuple]:
    out = []
    for r in df.itertuples(index=False):
        out.append(tuple(None if (isinstance(x, float) and np.isnan(x)) else x for x in r))
    return out


EXPECTED = [
    ("t", "A", "PC", "ES51", "2020", 1.5, None, None, "2026-02-10T11:00:00+01:00"),
    ("t", "A", "PC", "ES51", "2022", 2.0, "p", None, "2026-02-10T11:00:00+01:00"),
    ("t", "A", "PC", "NL41", "2020", None, None, "C", "2026-02-10T11:00:00+01:00"),
    ("t", "A", "PC", "NL41", "2021", None, "p", "C", "2026-02-10T11:00:00+01:00"),
    ("t", "A", "PC", "NL41", "2022", 3.0, None, None, "2026-02-10T11:00:00+01:00"),
]


def test_sparse_objects_status_on_empty_cells_and_pc_split():
    doc = cube({"5": 3, "0": 1.5, "2": 2}, {"2": "p", "3": "|C", "4": "p|C"})
    df = decode(orjson.dumps(doc), "t")
    assert list(df.columns) == COLUMNS
    assert rows(df) == EXPECTED
    assert df["value"].dtype == np.float64
    assert all(str(df[c].dtype) == "str" for c in COLUMNS if c != "value")


def test_dense_arrays_and_index_as_array_give_the_same_frame():
    dense_v = [1.5, None, 2, None, None, 3]
    dense_s = [None, None, "p", "|C", "p|C", None]
    sparse = decode(orjson.dumps(cube({"5": 3, "0": 1.5, "2": 2}, {"2": "p", "3": "|C", "4": "p|C"})), "t")
    dense = decode(orjson.dumps(cube(dense_v, dense_s, index_as_array=True)), "t")
    pd.testing.assert_frame_equal(dense, sparse)


def test_gzip_and_bom_and_dataset_from_extension():
    doc = cube({"0": 1.5}) | {"extension": {"id": "NAMA_10R_2GDP"}}
    df = decode(gzip.compress(b"\xef\xbb\xbf" + orjson.dumps(doc)))
    assert df["dataset"].tolist() == ["nama_10r_2gdp"]
    assert df["obs_status"].isna().all() and df["conf_status"].isna().all()


def test_empty_cube_has_all_columns():
    df = decode(orjson.dumps(cube({})), "t")
    assert list(df.columns) == COLUMNS and len(df) == 0


def test_time_codes_normalised():
    doc = cube({"0": 1, "1": 2, "2": 3})
    doc["dimension"]["time"]["category"]["index"] = {"2021Q1": 0, "2021M05": 1, "2021-Q2": 2}
    assert decode(orjson.dumps(doc), "t")["time"].tolist() == ["2021-Q1", "2021-05", "2021-Q2"]


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("p", ("p", None)),
        ("|C", (None, "C")),
        ("p|C", ("p", "C")),
        ("C", (None, "C")),
        ("N", (None, "N")),
        ("P", (None, "P")),
        ("bp", ("bp", None)),
        ("c", (None, "C")),
        ("", (None, None)),
    ],
)
def test_split_flag(flag, expected):
    assert split_flag(flag) == expected


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (error_json(400, 150, "Semantic error: unknown dimension foo"), "error", "400/150"),
        (b'{"error":{"status":404,"id":100,"label":"No results found"}}', "error", "No results"),
        (async_warning(), "async", "ASYNCHRONOUS_RESPONSE"),
        (sync_envelope("1f2e-aa"), "envelope", "1f2e-aa"),
        (b"<!DOCTYPE html><html><head><title>Sorry</title></head><body>down</body></html>", "html", "Sorry"),
        (orjson.dumps(cube({"0": 1}))[:-20], "truncated", "JSON"),
        (gzip.compress(orjson.dumps(cube({"0": 1})))[:-10], "truncated", "gzip"),
        (b"", "empty", "empty"),
        (b"   \n", "empty", "empty"),
        (b"hello world", "unknown", "unrecognised"),
        (b'{"foo": 1}', "unknown", "not a JSON-stat"),
    ],
)
def test_not_data_raises_one_line(body, kind, words):
    with pytest.raises(EurostatPayloadError) as info:
        decode(body, "nama_10r_2gdp")
    msg = str(info.value)
    assert info.value.kind == kind
    assert "\n" not in msg and msg.startswith("nama_10r_2gdp: ") and words in msg


SHARED = shared_dir()


@pytest.mark.skipif(SHARED is None, reason="../shared (real Eurostat captures) is absent")
def test_real_tsv_capture_counts_and_spot_values():
    fixture = SHARED / "fixtures/eurostat/nama_10r_3gdp_EUR_HAB.tsv.gz"
    df = decode(fixture.read_bytes(), "nama_10r_3gdp")
    assert list(df.columns) == COLUMNS
    assert len(df) == 37_758
    assert df.groupby(["freq", "unit", "geo"]).ngroups == 1_758
    assert set(df["obs_status"].dropna().unique()) == {"e", "b", "p", "d"}
    assert df["conf_status"].isna().all() and df["source_updated_at"].isna().all()
    assert df["value"].notna().all()  # the capture has no flag without a value
    assert df["time"].min() == "2000" and df["time"].max() == "2022"
    idx = df.set_index(["geo", "time"])
    assert idx.loc[("BE100", "2022"), "value"] == 77800.0 and idx.loc[("BE100", "2022"), "obs_status"] == "p"
    assert idx.loc[("BE100", "2003"), "value"] == 54900.0 and pd.isna(idx.loc[("BE100", "2003"), "obs_status"])
    assert ("BE100", "2002") not in idx.index  # ':' without flag is no row
    assert idx.loc[("DE300", "2018"), "value"] == 41300.0 and idx.loc[("DE300", "2018"), "obs_status"] == "e"
    assert idx.loc[("ES531", "2001"), "value"] == 18600.0 and idx.loc[("ES531", "2001"), "obs_status"] == "d"
    assert idx.loc[("FR101", "2021"), "value"] == 117900.0
    assert idx.loc[("AL", "2021"), "value"] == 5400.0 and idx.loc[("AL", "2021"), "obs_status"] == "p"
    assert (df["obs_status"] == "d").sum() == 3


def test_tsv_cells_flags_crlf_and_trailing_spaces():
    tsv = (
        b"freq,unit,geo\\TIME_PERIOD\t2020 \t2021 \t2022 \r\nA,PC,ES51\t1.5 \t: \t2 p\r\nA,PC,NL41\t: c\t: p\t3 bp\r\n"
    )
    df = decode(tsv, "t")
    assert rows(df) == [
        ("t", "A", "PC", "ES51", "2020", 1.5, None, None, None),
        ("t", "A", "PC", "ES51", "2022", 2.0, "p", None, None),
        ("t", "A", "PC", "NL41", "2020", None, None, "C", None),
        ("t", "A", "PC", "NL41", "2021", None, "p", None, None),
        ("t", "A", "PC", "NL41", "2022", 3.0, "bp", None, None),
    ]


def old_bulk_layout(tsv: bytes) -> bytes:
    """The same series in Eurostat's old bulk TSV layout: no freq dimension, ``geo\\time``, periods descending."""
    lines = tsv.decode().splitlines()
    head = lines[0].split("\t")
    dims = head[0].split("\\")[0].split(",")
    assert dims[0] == "freq"
    out = ["\t".join([",".join(dims[1:]) + "\\time", *reversed(head[1:])])]
    for line in lines[1:]:
        cells = line.split("\t")
        out.append("\t".join([cells[0].split(",", 1)[1], *reversed(cells[1:])]))
    return ("\n".join(out) + "\n").encode()


def test_old_bulk_tsv_layout_decodes_like_the_current_one():
    """``unit,geo\\time`` header (``vehicle,unit,geo\\time`` in the old files), no freq, descending years, periods with
    trailing spaces (#21.5)."""
    tsv = b"freq,unit,geo\\TIME_PERIOD\t2020 \t2021 \t2022 \nA,PC,ES51\t1.5 \t: \t2 p\nA,PC,NL41\t: c\t: p\t3 bp\n"
    old = old_bulk_layout(tsv)
    assert old.startswith(b"unit,geo\\time\t2022 \t2021 \t2020 \nPC,ES51\t2 p\t: \t1.5 \n")
    want = decode(tsv, "t").drop(columns="freq")
    got = decode(old, "t")
    key = ["unit", "geo", "time"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True), want.sort_values(key).reset_index(drop=True)
    )


@pytest.mark.skipif(SHARED is None, reason="../shared (real Eurostat captures) is absent")
def test_real_capture_in_the_old_bulk_layout_decodes_exactly():
    real = gzip.decompress((SHARED / "fixtures/eurostat/nama_10r_3gdp_EUR_HAB.tsv.gz").read_bytes())
    key = ["unit", "geo", "time"]
    want = decode(real, "nama_10r_3gdp").drop(columns="freq").sort_values(key).reset_index(drop=True)
    got = decode(gzip.compress(old_bulk_layout(real)), "nama_10r_3gdp").sort_values(key).reset_index(drop=True)
    assert len(got) == 37_758
    pd.testing.assert_frame_equal(got, want)


def test_jsonstat_of_text_values_is_one_line():
    doc = cube([1.5, "A1B2", None, 4, 5, 6])
    with pytest.raises(EurostatPayloadError, match=r"value at position 1 is not a number \('A1B2'\)"):
        decode(orjson.dumps(doc), "t")
    sparse = {**cube({"0": 1.5, "4": "x"}), "value": {"0": 1.5, "4": "x"}}
    with pytest.raises(EurostatPayloadError, match=r"value at position 4 is not a number"):
        decode(orjson.dumps(sparse), "t")
    with pytest.raises(EurostatPayloadError, match=r"holds arrays, not one number per cell"):
        decode(orjson.dumps({**cube([1, 2, 3, 4, 5, 6]), "value": [[1, 2], [3, 4], [5, 6]]}), "t")
    # numbers written as strings are numbers
    assert decode(orjson.dumps(cube(["1.5", "2", None, 4, 5, 6])), "t")["value"].tolist()[:2] == [1.5, 2.0]


def test_truncated_tsv_raises():
    tsv = b"freq,unit,geo\\TIME_PERIOD\t2020 \t2021 \nA,PC,ES51\t1.5 \t2 \nA,PC,NL41\t3 "
    with pytest.raises(EurostatPayloadError, match="truncated"):
        decode(tsv, "t")


@pytest.mark.parametrize("path", sorted(BUNDLED_SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_jsonstat_and_tsv_of_the_same_cube_decode_identically(path):
    doc = orjson.loads(path.read_bytes())
    from_json = decode(path.read_bytes(), path.stem)
    from_tsv = decode(gzip.compress(jsonstat_to_tsv(doc)), path.stem)
    assert from_json["source_updated_at"].notna().all()
    pd.testing.assert_frame_equal(from_tsv, from_json.assign(source_updated_at=from_tsv["source_updated_at"]))


def test_sdmx_csv():
    csv = (
        b"DATAFLOW,LAST UPDATE,freq,unit,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG,CONF_STATUS\n"
        b"ESTAT:NAMA_10R_2GDP(1.0),10/02/26 11:00:00,A,PC,ES51,2020,1.5,,\n"
        b"ESTAT:NAMA_10R_2GDP(1.0),10/02/26 11:00:00,A,PC,ES51,2022,2,p,\n"
        b"ESTAT:NAMA_10R_2GDP(1.0),10/02/26 11:00:00,A,PC,NL41,2020,,,C\n"
    )
    df = decode(csv)
    assert list(df.columns) == COLUMNS
    assert rows(df) == [
        ("nama_10r_2gdp", "A", "PC", "ES51", "2020", 1.5, None, None, "2026-02-10T11:00:00+01:00"),
        ("nama_10r_2gdp", "A", "PC", "ES51", "2022", 2.0, "p", None, "2026-02-10T11:00:00+01:00"),
        ("nama_10r_2gdp", "A", "PC", "NL41", "2020", None, None, "C", "2026-02-10T11:00:00+01:00"),
    ]


def test_large_sparse_cube_is_vectorised():
    sizes = [1, 4, 50, 40, 26]
    n = int(np.prod(sizes))
    rng = np.random.default_rng(1)
    pos = np.sort(rng.choice(n, n // 2, replace=False))
    doc = {
        "version": "2.0",
        "class": "dataset",
        "id": ["freq", "unit", "nace_r2", "geo", "time"],
        "size": sizes,
        "dimension": {
            d: {"category": {"index": {f"{d}{i}": i for i in range(s)}}}
            for d, s in zip(["freq", "unit", "nace_r2", "geo", "time"], sizes, strict=True)
        },
        "value": {str(p): float(p) for p in pos},
        "status": {str(p): "e" for p in pos[::7]},
    }
    df = decode(orjson.dumps(doc), "big")
    assert len(df) == len(pos)
    coords = np.unravel_index(pos, sizes)
    assert (df["geo"].to_numpy() == np.array([f"geo{i}" for i in coords[3]])).all()
    assert (df["value"].to_numpy() == pos.astype(float)).all()
    assert (df["obs_status"] == "e").sum() == len(pos[::7])


@pytest.mark.parametrize(
    "body",
    [
        # pretty-printed, nulls in value and status, exponent, negative, unsorted keys
        b'{"version": "2.0", "class": "dataset", "id": ["geo", "time"], "size": [2, 3],\n'
        b' "dimension": {"geo": {"category": {"index": {"ES51": 0, "NL41": 1}}},\n'
        b'               "time": {"category": {"index": {"2020": 0, "2021": 1, "2022": 2}}}},\n'
        b' "value": {\n  "5" : 1.5E3,\n  "0": -2,\n  "3": null },\n'
        b' "status": {"3": "p|C", "4": null, "1": "e"}}',
        # a label that contains the text of a section: the cut must be refused (full orjson parse)
        b'{"version": "2.0", "label": "\\"value\\": {x}", "id": ["geo"], "size": [2],'
        b' "dimension": {"geo": {"category": {"index": ["ES51", "NL41"]}}}, "value": {"1": 4}}',
        b'{"version": "2.0", "label": "a \\"value\\":{ b", "id": ["geo"], "size": [2],'
        b' "dimension": {"geo": {"category": {"index": ["ES51", "NL41"]}}}, "value": {"1": 4}}',
        # status with a colon or an escape, value nested in extension: full orjson parse
        b'{"id": ["geo"], "size": [2], "dimension": {"geo": {"category": {"index": ["A1", "B2"]}}},'
        b' "value": {"0": 1}, "status": {"0": "p:x", "1": "\\u0065"}}',
        b'{"id": ["geo"], "size": [2], "dimension": {"geo": {"category": {"index": ["A1", "B2"]}}},'
        b' "extension": {"value": {"0": 9}}, "value": {"0": 1}}',
        b'{"id": ["geo"], "size": [2], "dimension": {"geo": {"category": {"index": ["A1", "B2"]}}}, "value": {}}',
    ],
)
def test_sparse_sections_read_by_arrow_match_the_full_json_parse(body):
    from ingest.eurostat.decode import decode_jsonstat

    pd.testing.assert_frame_equal(decode(body, "t"), decode_jsonstat(orjson.loads(body), "t"))


def test_sparse_sections_are_read_without_python_dicts():
    from ingest.eurostat.decode import _Cells, _cut_sparse_sections

    doc = _cut_sparse_sections(orjson.dumps(cube({"5": 3, "0": 1.5, "2": 2}, {"2": "p", "3": "|C"})))
    assert isinstance(doc["value"], _Cells) and isinstance(doc["status"], _Cells)
    assert doc["value"].pos.tolist() == [5, 0, 2] and doc["status"].items.to_pylist() == ["p", "|C"]
