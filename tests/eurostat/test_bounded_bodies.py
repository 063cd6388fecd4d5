"""Eurostat bodies are bounded: the client stops reading past ``max_body_bytes`` and every gzip expansion goes
through one capped helper (``envelope.gunzip``: absolute size and compression ratio), reason ``too_large``.

The gzip bombs (2 GiB of zeros; 320 MiB of data under the ratio cap) are built at run time (tests/bombs.py) and
decoded in a child process whose peak RSS must stay under 512 MiB.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from ingest.config import load_catalogue
from ingest.eurostat.client import EurostatClient
from ingest.eurostat.decode import decode
from ingest.eurostat.envelope import gunzip, gzip_limits, unwrap
from ingest.eurostat.errors import EurostatPayloadError
from ingest.eurostat.replay import JSON
from ingest.eurostat.toc import parse_toc
from ingest.tasks.eurostat import payload_metadata
from tests import bombs

RSS_LIMIT_MIB = 512
DS = "nama_10r_2gdp"
STAT = f"/statistics/1.0/data/{DS}"


@pytest.fixture(scope="module")
def zeros_bomb(tmp_path_factory) -> Path:
    return bombs.gzip_bomb(tmp_path_factory.mktemp("gz") / "zeros.json.gz", 2 * bombs.GIB)


@pytest.fixture(scope="module")
def dense_bomb(tmp_path_factory) -> Path:
    """320 MiB that compress only ~60x (under the ratio cap): the absolute cap must stop it."""
    chunk = os.urandom(16 << 10) + b"\0" * (bombs.CHUNK - (16 << 10))
    return bombs.gzip_bomb(tmp_path_factory.mktemp("gz") / "dense.json.gz", 320 * bombs.MIB, chunk)


def kind_of(fn, *args, **kw) -> EurostatPayloadError:
    with pytest.raises(EurostatPayloadError) as info:
        fn(*args, **kw)
    return info.value


# ----------------------------------------------------------------------------------------------- bombs (child)
@pytest.mark.parametrize("module,func", [("decode", "decode"), ("envelope", "unwrap")])
def test_gzip_bomb_is_too_large_in_bounded_memory(zeros_bomb: Path, module: str, func: str) -> None:
    assert zeros_bomb.stat().st_size < 4 * bombs.MIB
    got = bombs.probe_eurostat(zeros_bomb, module, func)
    assert got.reason == "too_large", got.message
    assert "gzip body expands beyond 100 times its compressed size" in got.message
    assert got.rss_mib < RSS_LIMIT_MIB, got


def test_gzip_body_under_the_ratio_stops_at_the_absolute_cap(dense_bomb: Path) -> None:
    max_bytes, _ = gzip_limits()
    got = bombs.probe_eurostat(dense_bomb)
    assert got.reason == "too_large", got.message
    assert got.message == f"gzip body expands beyond {max_bytes} bytes"
    assert got.rss_mib < RSS_LIMIT_MIB, got


# ----------------------------------------------------------------------------------------------- every path
def test_every_decompression_path_is_capped(zeros_bomb: Path) -> None:
    data = zeros_bomb.read_bytes()
    assert kind_of(unwrap, data, DS).kind == "too_large"
    assert kind_of(decode, data, DS).kind == "too_large"
    assert kind_of(payload_metadata, data).kind == "too_large"
    err = kind_of(parse_toc, data)
    assert err.kind == "too_large" and err.dataset == "toc"


def test_limits_come_from_the_catalogue(monkeypatch) -> None:
    body = gzip.compress(os.urandom(5000))
    assert len(unwrap(body)) == 5000
    monkeypatch.setitem(load_catalogue().sources["eurostat"], "max_decompressed_bytes", 1000)
    err = kind_of(unwrap, body, DS)
    assert err.kind == "too_large" and err.problem == "gzip body expands beyond 1000 bytes"
    assert "\n" not in str(err)


def test_gunzip_reads_like_gzip_decompress() -> None:
    a, b = gzip.compress(b'{"a": 1'), gzip.compress(b', "b": 2}')
    assert gunzip(a + b) == b'{"a": 1, "b": 2}'  # members in a row
    assert gunzip(a + b"\0" * 9) == b'{"a": 1'  # zero padding
    assert kind_of(gunzip, a + b"junk").kind == "truncated"
    assert kind_of(gunzip, a[:-5]).kind == "truncated"
    small = gzip.compress(b"x" * 900_000)  # very compressible but below the 1 MiB floor of the ratio check
    assert gunzip(small) == b"x" * 900_000


def test_bundled_samples_stay_within_the_limits() -> None:
    from ingest.config import SAMPLES_DIR

    for path in sorted((SAMPLES_DIR / "eurostat").glob("*.json")):
        frame = decode(gzip.compress(path.read_bytes()), path.stem)
        assert len(frame) > 0, path.name


# ----------------------------------------------------------------------------------------------- client
def test_client_stops_reading_a_body_past_the_limit(server) -> None:
    received = []
    client = EurostatClient(
        server.base_url,
        on_response=received.append,
        timeout=5,
        max_attempts=3,
        backoff_scale=0.001,
        max_body_bytes=1_000_000,
    )
    server.script(STAT, [(200, JSON, b"{" + b" " * 4_000_000 + b"}")])
    err = kind_of(client.fetch_jsonstat, DS, {"unit": ["EUR_HAB"]}, ["ES51"], "2015")
    assert err.kind == "too_large" and err.problem == "body exceeds 1000000 bytes (stopped reading)"
    assert len(server.calls(STAT)) == 1  # not retried
    assert len(received) == 1 and 1_000_000 < len(received[0].body) <= 1_000_000 + (1 << 20)  # archived as cut


def test_client_limit_defaults_to_the_catalogue() -> None:
    limit = load_catalogue().limits("eurostat")["max_body_bytes"]
    assert EurostatClient("http://127.0.0.1:9").max_body_bytes == limit == 200_000_000
