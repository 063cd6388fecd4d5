"""The bulk reader (ingest.eurostat.bulk): a bulk file decoded piece by piece gives exactly the whole-body decode,
within its bounds, and a body that is not SDMX TSV is one line."""

from __future__ import annotations

import gzip
import io

import pandas as pd
import pytest

from ingest.eurostat.bulk import iter_frames, select
from ingest.eurostat.decode import decode
from ingest.eurostat.errors import EurostatPayloadError
from tests.conftest import SHARED

REAL_TSV = SHARED / "fixtures" / "eurostat" / "nama_10r_3gdp_EUR_HAB.tsv.gz"
BIG = 1 << 30


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
        (gzip.compress(b"freq,geo\\TIME_PERIOD\t2020 \nA,DE\t1 \n")[:-12], "truncated or corrupt gzip"),
    ],
)
def test_a_body_that_is_not_a_bulk_file_is_one_line(body, match):
    with pytest.raises(EurostatPayloadError, match=match) as err:
        list(iter_frames(io.BytesIO(body), "ds", max_bytes=BIG, max_ratio=1000))
    assert "\n" not in str(err.value)


def test_select_keeps_what_the_statistics_api_would_answer():
    frame = decode(_tsv(), "ds")
    picked = select(frame, {"nace_r2": ["C01", "C02"]}, ["DE001", "DE002", "DE014"], "2020")
    assert set(picked["nace_r2"]) == {"C01", "C02"} and set(picked["geo"]) == {"DE001", "DE002", "DE014"}
    assert picked["time"].min() == "2020" and len(picked) == len(
        frame[frame.nace_r2.isin(["C01", "C02"]) & frame.geo.isin(["DE001", "DE002", "DE014"]) & (frame.time >= "2020")]
    )
    assert select(frame, {}, [], None) is frame  # every region, no filter: the piece as it is
    with pytest.raises(EurostatPayloadError, match="filters indic_sbs, a dimension the bulk file does not have"):
        select(frame, {"indic_sbs": ["X"]}, [], None, dataset="ds")
