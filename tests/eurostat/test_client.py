"""Client failure modes over real loopback HTTP (ReplayServer), no HTTP mocks."""

from __future__ import annotations

import gzip
import socket

import pandas as pd
import pytest

from ingest.eurostat.client import EurostatClient
from ingest.eurostat.decode import decode
from ingest.eurostat.errors import EurostatPayloadError, EurostatUnavailable, ExtractionTooBig
from ingest.eurostat.replay import (
    JSON,
    RESET,
    TRUNCATE,
    XML,
    ReplayServer,
    Reply,
    Sleep,
    async_status,
    async_warning,
    error_json,
    sync_envelope,
)

DS = "nama_10r_2gdp"
STAT = f"/statistics/1.0/data/{DS}"
GEO = ["ES51", "NL41", "NL42", "BE10", "ES", "NL", "BE", "EU27_2020"]
FILTERS = {"unit": ["EUR_HAB"]}


def fetch(client: EurostatClient, geo=GEO) -> pd.DataFrame:
    parts = client.fetch_jsonstat(DS, FILTERS, geo, "2015")
    return pd.concat([decode(p.body, DS) for p in parts], ignore_index=True)


def test_happy_path_builds_eurostat_query_and_archives_every_body(client, server, received):
    df = fetch(client)
    (call,) = server.calls(STAT)
    assert call.query == {"lang": ["EN"], "unit": ["EUR_HAB"], "geo": GEO, "sinceTimePeriod": ["2015"]}
    assert set(df["geo"]) <= set(GEO) and set(df["unit"]) == {"EUR_HAB"}
    assert len(received) == 1 and received[0].status == 200 and received[0].source == "eurostat"


@pytest.mark.parametrize("status", [200, 400])
def test_error_json_is_a_payload_error_not_retried(client, server, received, status):
    server.script(STAT, [(status, JSON, error_json(400, 150, "Semantic error: unknown unit"))])
    with pytest.raises(EurostatPayloadError) as info:
        fetch(client)
    assert info.value.kind == "error" and "unknown unit" in str(info.value) and "\n" not in str(info.value)
    assert len(server.calls(STAT)) == 1
    assert received[0].body.startswith(b'{"error"')  # the error body was handed over before parsing


def test_html_at_200_is_retried_then_succeeds(client, server, received):
    page = b"<html><head><title>Service unavailable</title></head><body>maintenance</body></html>"
    server.script(STAT, [(200, "text/html", page), (200, "text/html", page)])
    assert len(fetch(client)) > 0
    assert len(server.calls(STAT)) == 3 and [r.body[:6] for r in received[:2]] == [b"<html>"] * 2


def test_html_forever_raises_payload_error(client, server):
    page = b"<html><head><title>Sorry</title></head></html>"
    server.script(STAT, [(200, "text/html", page)] * 4)
    with pytest.raises(EurostatPayloadError, match="HTML") as info:
        fetch(client)
    assert info.value.kind == "html" and len(server.calls(STAT)) == 4


def test_json_content_type_with_html_body_is_not_data(client, server):
    server.script(STAT, [(200, JSON, b"<!DOCTYPE html><html><title>x</title></html>")] * 4)
    with pytest.raises(EurostatPayloadError, match="HTML"):
        fetch(client)


def test_redirect_to_sorry_host_is_unavailable(client, server):
    sorry = server.base_url.replace("127.0.0.1", "localhost") + "/sorry"
    server.script(STAT, [(302, "text/plain", b"", {"Location": sorry})] * 4)
    with pytest.raises(EurostatUnavailable, match="redirected"):
        fetch(client)


def test_async_warning_then_success(client, server, received):
    server.script(STAT, [(200, JSON, async_warning()), (200, JSON, async_warning())])
    assert len(fetch(client)) > 0
    assert len(server.calls(STAT)) == 3
    assert [b'"warning"' in r.body for r in received] == [True, True, False]


def test_async_warning_forever_is_bounded(server):
    client = EurostatClient(server.base_url, poll_initial=0.05, poll_max=0.05, poll_budget=0.3, backoff_scale=1)
    server.script(STAT, [(200, JSON, async_warning())] * 100)
    with pytest.raises(EurostatPayloadError, match="still asynchronous") as info:
        fetch(client)
    assert info.value.kind == "async" and 2 <= len(server.calls(STAT)) < 20


def test_http_413_splits_geo_in_halves_and_merges(samples_dir, received):
    with ReplayServer(samples_dir, max_cells=25) as server:
        client = EurostatClient(server.base_url, on_response=received.append, backoff_scale=0.001)
        parts = client.fetch_jsonstat(DS, FILTERS, GEO, "2015")
        whole = pd.concat([decode(p.body, DS) for p in parts], ignore_index=True)
        calls = server.calls(STAT)
    with ReplayServer(samples_dir) as server:
        client = EurostatClient(server.base_url, backoff_scale=0.001)
        direct = fetch(client)
    # 8 geos × 10 years = 80 cells > 25 → 4 → 2 geos (20 cells) per part
    assert len(parts) == 4 and [c.query["geo"] for c in calls][0] == GEO
    assert [c.query["geo"] for c in calls if len(c.query["geo"]) == 2] == [GEO[i : i + 2] for i in (0, 2, 4, 6)]
    assert sum(r.status == 413 for r in received) == 3
    key = ["geo", "time"]
    pd.testing.assert_frame_equal(
        whole.sort_values(key).reset_index(drop=True), direct.sort_values(key).reset_index(drop=True)
    )


def test_http_413_with_one_geo_raises(samples_dir):
    with ReplayServer(samples_dir, max_cells=5) as server:
        client = EurostatClient(server.base_url, backoff_scale=0.001)
        with pytest.raises(ExtractionTooBig):
            client.fetch_jsonstat(DS, FILTERS, ["ES51", "NL41"], None)
        assert len(server.calls(STAT)) == 2  # whole list, then its first half (one geo) fails


def test_503_several_times_then_success(client, server, received):
    server.script(STAT, [(503, "text/plain", b"Service Unavailable")] * 3)
    assert len(fetch(client)) > 0
    assert [r.status for r in received] == [503, 503, 503, 200]


def test_503_forever_is_unavailable(client, server):
    server.script(STAT, [(503, "text/plain", b"busy")] * 10)
    with pytest.raises(EurostatUnavailable, match="HTTP 503") as info:
        fetch(client)
    assert "\n" not in str(info.value) and len(server.calls(STAT)) == 4


def test_connection_reset_then_success(client, server):
    server.script(STAT, [RESET, RESET])
    assert len(fetch(client)) > 0
    assert [c.action for c in server.calls(STAT)] == ["reset", "reset", "normal"]


def test_truncated_body_is_retried_and_partial_bytes_archived(client, server, received):
    server.script(STAT, [TRUNCATE])
    df = fetch(client)
    assert len(df) > 0 and len(server.calls(STAT)) == 2
    assert len(received) == 2 and len(received[0].body) < len(received[1].body)


def test_truncated_json_with_matching_length_is_retried(client, server, received):
    server.script(STAT, [(200, JSON, b'{"version":"2.0","class":"dataset","value":{"0":1')])
    assert len(fetch(client)) > 0 and len(server.calls(STAT)) == 2


def test_timeout_then_success(server):
    client = EurostatClient(server.base_url, timeout=0.2, backoff_scale=0.001)
    server.script(STAT, [Sleep(0.6)])
    assert len(fetch(client)) > 0 and len(server.calls(STAT)) == 2


def test_timeouts_forever_are_unavailable(server):
    client = EurostatClient(server.base_url, timeout=0.1, max_attempts=2, backoff_scale=0.001)
    server.script(STAT, [Sleep(0.4), Sleep(0.4)])
    with pytest.raises(EurostatUnavailable, match="timed out"):
        fetch(client)


def test_unreachable_host_is_one_line_unavailable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    client = EurostatClient(base, max_attempts=3, backoff_scale=0.001)
    with pytest.raises(EurostatUnavailable) as info:
        client.fetch_jsonstat(DS, FILTERS, GEO, None)
    msg = str(info.value)
    assert msg.startswith(f"Eurostat is unreachable at {base} (") and "\n" not in msg
    assert "Connection refused" in msg


def test_sdmx_tsv_direct(client, server, received):
    rec = client.fetch_tsv(DS, "A.EUR_HAB.", "2015")
    assert rec.body[:2] == b"\x1f\x8b" and "format=TSV" in rec.url and "compressed=true" in rec.url
    assert server.calls("/sdmx/2.1/data/")[0].path == f"/sdmx/2.1/data/{DS}/A.EUR_HAB."
    df = decode(rec.body, DS)
    assert len(df) == len(decode((samples := server.samples_dir / f"{DS}.json").read_bytes(), DS)) and samples


def test_sdmx_async_envelope_polls_then_downloads(client, server, received):
    ident = "6a1b2c3d-0000-4000-8000-000000000001"
    server.script(f"/sdmx/2.1/data/{DS}", [Reply(200, XML, sync_envelope(ident))])
    server.script(
        f"/1.0/async/status/{ident}",
        [Reply(200, XML, async_status(ident, s)) for s in ("SUBMITTED", "PROCESSING", "PROCESSING")],
    )
    server.register_async(ident, DS)
    rec = client.fetch_tsv(DS)
    assert len(decode(rec.body, DS)) > 0
    paths = [c.path for c in server.requests]
    assert paths[0].startswith("/sdmx/2.1/data/") and paths[-1] == f"/1.0/async/data/{ident}"
    assert paths.count(f"/1.0/async/status/{ident}") == 4
    assert b"syncResponse" in received[0].body and sum(b"asyncResponse" in r.body for r in received) == 4


def test_sdmx_async_expired_resubmits(client, server):
    first, second = "id-expired", "id-second"
    server.script(
        f"/sdmx/2.1/data/{DS}",
        [Reply(200, XML, sync_envelope(first)), Reply(200, XML, sync_envelope(second))],
    )
    server.script(f"/1.0/async/status/{first}", [Reply(200, XML, async_status(first, "EXPIRED"))])
    server.register_async(second, DS)
    rec = client.fetch_tsv(DS)
    assert len(decode(rec.body, DS)) > 0
    assert len(server.calls("/sdmx/2.1/data/")) == 2
    assert server.calls("/1.0/async/data/")[0].path.endswith(second)


def test_sdmx_async_never_ready_is_bounded(server):
    ident = "id-slow"
    client = EurostatClient(server.base_url, poll_initial=0.05, poll_max=0.05, poll_budget=0.3)
    server.script(f"/sdmx/2.1/data/{DS}", [Reply(200, XML, sync_envelope(ident))])
    server.script(f"/1.0/async/status/{ident}", [Reply(200, XML, async_status(ident, "PROCESSING"))] * 100)
    with pytest.raises(EurostatPayloadError, match="not available") as info:
        client.fetch_tsv(DS)
    assert info.value.kind == "envelope"
    assert not server.calls("/1.0/async/data/")  # no data downloaded


def test_sdmx_truncated_gzip_is_retried(client, server):
    server.script(f"/sdmx/2.1/data/{DS}", [(200, "application/octet-stream", gzip.compress(b"x" * 5000)[:-30])])
    rec = client.fetch_tsv(DS)
    assert len(decode(rec.body, DS)) > 0 and len(server.calls("/sdmx/")) == 2


def test_toc(client, server):
    toc = client.toc()
    assert server.calls("/catalogue/toc/txt")[0].query == {"lang": ["en"]}
    entry = toc[DS]
    assert entry.type == "dataset" and entry.last_update is not None
    assert entry.last_structure_change.isoformat() == "2025-01-27"
    assert (entry.data_start, entry.data_end) == ("2015", "2024")


def test_unknown_dataset_404_is_payload_error_without_retry(client, server):
    with pytest.raises(EurostatPayloadError, match="No results") as info:
        client.fetch_jsonstat("no_such_dataset", {}, ["ES51"], None)
    assert info.value.kind == "error" and len(server.calls("/statistics/")) == 1


def test_backoff_scale_from_environment(monkeypatch, server):
    monkeypatch.setenv("EUROSTAT_BACKOFF_SCALE", "0.001")
    assert EurostatClient(server.base_url).scale == 0.001
    monkeypatch.delenv("EUROSTAT_BACKOFF_SCALE")
    assert EurostatClient(server.base_url).scale == 1.0


def test_sdmx_soap_fault_is_payload_error(client, server):
    fault = (
        b'<?xml version="1.0"?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
        b"<S:Fault><faultcode>S:Server</faultcode><faultstring>No Results Found</faultstring></S:Fault>"
        b"</S:Body></S:Envelope>"
    )
    server.script(f"/sdmx/2.1/data/{DS}", [Reply(200, XML, fault)])
    with pytest.raises(EurostatPayloadError, match="No Results Found"):
        client.fetch_tsv(DS)
    assert not server.calls("/1.0/async/")
