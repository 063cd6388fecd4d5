"""ReplayServer: Eurostat URL shapes, filtering, scripting, CLI."""

from __future__ import annotations

import subprocess
import sys

import orjson
import requests

from ingest.eurostat.decode import decode
from ingest.eurostat.replay import ReplayServer
from tests.eurostat.eurostat_testutil import REPO


def test_filters_apply_to_jsonstat(server):
    url = f"{server.base_url}/statistics/1.0/data/nama_10r_2gdp"
    params = [
        ("lang", "EN"),
        ("geo", "NL41"),
        ("geo", "ES51"),
        ("unit", "MIO_EUR"),
        ("sinceTimePeriod", "2020"),
    ]
    resp = requests.get(url, params=params, timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    doc = orjson.loads(resp.content)
    assert doc["size"] == [1, 1, 2, 5]
    df = decode(resp.content, "nama_10r_2gdp")
    assert set(df["geo"]) == {"NL41", "ES51"} and df["time"].min() == "2020" and set(df["unit"]) == {"MIO_EUR"}


def test_unknown_dataset_is_eurostat_404(server):
    resp = requests.get(f"{server.base_url}/statistics/1.0/data/nope", timeout=5)
    assert resp.status_code == 404 and orjson.loads(resp.content)["error"][0]["id"] == 100


def test_scripts_are_consumed_then_normal(server):
    server.script("/catalogue", [(500, "text/plain", b"boom")])
    first = requests.get(f"{server.base_url}/catalogue/toc/txt", timeout=5)
    second = requests.get(f"{server.base_url}/catalogue/toc/txt", timeout=5)
    assert (first.status_code, second.status_code) == (500, 200)
    assert [c.action for c in server.calls("/catalogue")] == ["scripted", "normal"]


def test_without_samples_everything_is_404():
    with ReplayServer(None) as srv:
        assert requests.get(f"{srv.base_url}/catalogue/toc/txt", timeout=5).status_code == 404


def test_cli_prints_base_url():
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.eurostat.replay", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        assert requests.get(f"{base}/statistics/1.0/data/demo_r_d2jan?geo=HU32", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_client_hanging_up_prints_no_traceback(capsys):
    """A client that resets its connection mid-request (a bounded read stopping early, a timeout) is the client's
    business: the replay server says nothing (a traceback would land in `ss4gl run`'s output)."""
    import socket
    import struct
    import time

    from ingest.eurostat.replay import ReplayServer

    with ReplayServer() as server:
        host, port = server.base_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        client = socket.create_connection((host, int(port)))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset
        client.send(b"GET /catalogue/toc/txt HTTP/1.1\r\n")  # half a request
        time.sleep(0.1)
        client.close()
        time.sleep(0.5)
    assert "Traceback" not in capsys.readouterr().err
