"""The bulk reader (ingest.eurostat.bulk): a bulk file decoded piece by piece gives exactly the whole-body decode,
within its bounds, and a body that is not SDMX TSV is one line."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from ingest.eurostat.bulk import iter_frames, iter_tables, select
from ingest.eurostat.decode import decode
from ingest.eurostat.envelope import gunzip_blocks
from ingest.eurostat.errors import EurostatPayloadError
from ingest.eurostat.frames import table_frame
from tests.conftest import SHARED

REAL_TSV = SHARED / "fixtures" / "eurostat" / "nama_10r_3gdp_EUR_HAB.tsv.gz"
BIG = 1 << 30
REPO = Path(__file__).resolve().parents[2]


def _tsv(series: int = 300, crlf: bool = True) -> bytes:
    end = "\r\n" if crlf else "\n"
    head = "freq,unit,nace_r2,geo\\TIME_PERIOD\t" + "\t".join(f"{y} " for y in range(2015, 2025))
    lines = [head]
    for s in range(series):
        cells = [":" if (s + p) % 7 == 0 else f"{s * 10 + p}.5 {'p' if p % 3 == 0 else ''}" for p in range(10)]
        cells[4] = ": c" if s % 11 == 0 else cells[4]
        lines.append(f"A,NR,C{s % 13:02d},DE{s:03d}\t" + "\t".join(cells))
    return (end.join(lines) + end).encode()


def _pieces(body: bytes, block: int, **bounds) -> pd.DataFrame:
    frames = list(iter_frames(io.BytesIO(body), "ds", max_bytes=BIG, max_ratio=1000, block_bytes=block, **bounds))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("block", [64, 1000, 1 << 20])
@pytest.mark.parametrize("crlf", [True, False])
@pytest.mark.parametrize("zipped", [True, False])
def test_pieces_add_up_to_the_whole_body_decode(block, crlf, zipped):
    plain = _tsv(crlf=crlf)
    body = gzip.compress(plain, mtime=0) if zipped else plain
    pd.testing.assert_frame_equal(_pieces(body, block), decode(body, "ds"))


@pytest.mark.skipif(not REAL_TSV.is_file(), reason="../shared/fixtures absent beside this checkout")
def test_a_real_eurostat_tsv_decodes_piece_by_piece_exactly():
    body = REAL_TSV.read_bytes()
    pd.testing.assert_frame_equal(_pieces(body, 4096), decode(body, "ds"))


def test_every_bound_stops_the_reading_in_one_line():
    body = gzip.compress(_tsv(series=2000), mtime=0)
    with pytest.raises(EurostatPayloadError, match="expands beyond 10000 bytes") as small:
        list(iter_frames(io.BytesIO(body), "ds", max_bytes=10_000, max_ratio=1000, block_bytes=4096))
    assert small.value.kind == "too_large"
    bomb = gzip.compress(b"freq,geo\\TIME_PERIOD\t2020 \n" + b"A,DE\t1 \n" * 2_000_000, mtime=0)
    with pytest.raises(EurostatPayloadError, match="times its compressed size") as ratio:
        list(iter_frames(io.BytesIO(bomb), "ds", max_bytes=BIG, max_ratio=50))
    assert ratio.value.kind == "too_large"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"error":[{"status":404,"label":"not found"}]}', "not SDMX TSV .*json"),
        (b"<html><title>down</title></html>\n", "not SDMX TSV .*html"),
        (b"", "empty body"),
        (gzip.compress(b"freq,geo\\TIME_PERIOD\t2020 \nA,DE\t1 \n", mtime=0)[:-12], "truncated or corrupt gzip"),
    ],
)
def test_a_body_that_is_not_a_bulk_file_is_one_line(body, match):
    with pytest.raises(EurostatPayloadError, match=match) as err:
        list(iter_frames(io.BytesIO(body), "ds", max_bytes=BIG, max_ratio=1000))
    assert "\n" not in str(err.value)


def test_select_keeps_what_the_statistics_api_would_answer():
    body = _tsv()
    (table,) = iter_tables(io.BytesIO(body), "ds", max_bytes=BIG, max_ratio=1000, block_bytes=1 << 20)
    frame = decode(body, "ds")
    picked = table_frame(select(table, {"nace_r2": ["C01", "C02"]}, ["DE001", "DE002", "DE014"], "2020"))
    assert set(picked["nace_r2"]) == {"C01", "C02"} and set(picked["geo"]) == {"DE001", "DE002", "DE014"}
    expected = frame[
        frame.nace_r2.isin(["C01", "C02"]) & frame.geo.isin(["DE001", "DE002", "DE014"]) & (frame.time >= "2020")
    ]
    pd.testing.assert_frame_equal(picked, expected.reset_index(drop=True))
    assert select(table, {}, [], None) is table  # every region, no filter: the piece as it is
    with pytest.raises(EurostatPayloadError, match="filters indic_sbs, a dimension the bulk file does not have"):
        select(table, {"indic_sbs": ["X"]}, [], None, dataset="ds")


def test_pieces_are_arrow_tables_with_text_stored_once_per_piece():
    """The bulk path's pieces: dictionary-encoded text (a series' codes, periods and flags once per piece), null
    values where a cell has only a flag; as frames, exactly the whole-body decode."""
    body = _tsv(series=50)
    tables = list(iter_tables(io.BytesIO(body), "ds", max_bytes=BIG, max_ratio=1000, block_bytes=1 << 20))
    (table,) = tables
    for name in ("dataset", "freq", "unit", "nace_r2", "geo", "time", "obs_status", "conf_status"):
        assert pa.types.is_dictionary(table.schema.field(name).type), name
    assert table.column("value").null_count == decode(body, "ds")["value"].isna().sum() > 0
    pd.testing.assert_frame_equal(table_frame(table), decode(body, "ds"))


@pytest.mark.parametrize("members", [1, 2, 3])
@pytest.mark.parametrize("block", [1 << 10, 1 << 16, 1 << 20])
@pytest.mark.parametrize("padding", [0, 7])
def test_gunzip_blocks_gives_what_gzip_gives(members, block, padding):
    """Every member, whatever the block size (a member ending inside a read, output held back by zlib at a block's
    end), zero padding skipped as gzip does; a truncated stream or a bad CRC is one line."""
    data = b"".join(f"{i:07d}\t{(i * 7919) % 1000}.5 p\n".encode() for i in range(100_000))
    cut = [len(data) * k // members for k in range(members + 1)]
    body = b"".join(gzip.compress(data[a:b]) for a, b in zip(cut, cut[1:], strict=False)) + b"\0" * padding
    got = b"".join(gunzip_blocks(io.BytesIO(body), "ds", max_bytes=BIG, max_ratio=1000, block_bytes=block))
    assert got == gzip.decompress(body) == data
    first = gzip.compress(data[: cut[1]])
    broken = bytearray(first)
    broken[-6] ^= 1  # the CRC
    for bad in (first[:-20], bytes(broken)):
        with pytest.raises(EurostatPayloadError) as err:
            b"".join(gunzip_blocks(io.BytesIO(bad), "ds", max_bytes=BIG, max_ratio=1000, block_bytes=block))
        assert err.value.kind == "truncated" and "\n" not in str(err.value)


def test_decoding_a_bulk_file_never_imports_pandas(tmp_path):
    """The bulk path decodes into Arrow only: a process that decodes a bulk file does not pay pandas' import."""
    path = tmp_path / "bulk.tsv.gz"
    path.write_bytes(gzip.compress(_tsv(series=500), mtime=0))
    code = (
        "import sys\n"
        "from ingest.eurostat.bulk import iter_tables\n"
        f"rows = sum(t.num_rows for t in iter_tables(open({str(path)!r}, 'rb'), 'ds', max_bytes=1 << 30,"
        " max_ratio=1000, block_bytes=4096))\n"
        "print(rows, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.split() == [str(len(decode(_tsv(series=500), "ds"))), "False"]
