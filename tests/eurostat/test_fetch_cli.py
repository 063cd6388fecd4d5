"""`ss4gl eurostat fetch DATASET`: one dataset into the archive and raw over real loopback HTTP."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2

from ingest.config import SAMPLES_DIR
from ingest.eurostat.replay import ReplayServer


def _fetch(dataset: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "eurostat", "fetch", dataset],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_fetch_loads_one_dataset(fresh_db, tmp_path):
    with ReplayServer(SAMPLES_DIR / "eurostat") as server:
        env = {**os.environ, "EUROSTAT_BASE_URL": server.base_url, "SS4GL_HOME": str(tmp_path)}
        res = _fetch("nrg_ind_ren", env)
        assert res.returncode == 0, res.stderr
        assert "loaded" in res.stderr and "archived" in res.stderr
        assert any("/statistics/1.0/data/nrg_ind_ren" in r.path for r in server.requests)
        again = _fetch("nrg_ind_ren", env)  # idempotent: same rows
        assert again.returncode == 0, again.stderr
    conn = psycopg2.connect(fresh_db)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select count(*), count(distinct batch_id) from raw.eurostat_observations where dataset = 'nrg_ind_ren'"
        )
        rows, batches = cur.fetchone()
        cur.execute("select count(*) from raw.eurostat_observations where dataset <> 'nrg_ind_ren'")
        others = cur.fetchone()[0]
    conn.close()
    assert rows > 0 and batches == 1 and others == 0


def test_fetch_unknown_dataset_is_one_line(fresh_db, tmp_path):
    res = _fetch("no_such_dataset", {**os.environ, "SS4GL_HOME": str(tmp_path)})
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "no_such_dataset" in res.stderr


def test_fetch_unreachable_is_one_line(fresh_db, tmp_path):
    env = {**os.environ, "EUROSTAT_BASE_URL": "http://127.0.0.1:9", "SS4GL_HOME": str(tmp_path)}
    res = _fetch("nrg_ind_ren", env)
    assert res.returncode == 2
    assert "error: Eurostat is unreachable" in res.stderr and "Traceback" not in res.stderr
