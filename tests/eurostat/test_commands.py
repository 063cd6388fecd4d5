"""``eurostat decode`` CLI: CSV output and exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pandas as pd
import pytest

from ingest.eurostat.commands import register
from ingest.eurostat.replay import BUNDLED_SAMPLES, async_warning, error_json
from tests.eurostat.eurostat_testutil import REPO


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ss4gl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_decode_to_file(tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert run("eurostat", "decode", str(BUNDLED_SAMPLES / "nama_10r_2gdp.json"), "-o", str(out)) == 0
    df = pd.read_csv(out, dtype=str)
    assert list(df.columns)[:4] == ["dataset", "freq", "unit", "geo"] and (df["dataset"] == "nama_10r_2gdp").all()


def test_decode_to_stdout(capsys):
    assert run("eurostat", "decode", str(BUNDLED_SAMPLES / "nrg_ind_ren.json")) == 0
    out = capsys.readouterr().out
    assert out.startswith("dataset,freq,nrg_bal,unit,geo,time,value,obs_status,conf_status,source_updated_at\n")


@pytest.mark.parametrize(
    "body",
    [
        error_json(400, 140, "Syntax error\nsecond line"),
        async_warning(),
        b"<html><title>x</title></html>",
        # a JSON-stat dataset of text, not statistics (the shape of json-stat.org's order.json sample)
        b'{"version":"2.0","class":"dataset","id":["A","B"],"size":[2,2],"dimension":{"A":{"category":'
        b'{"index":["1","2"]}},"B":{"category":{"index":["1","2"]}}},"value":["A1B1","A1B2","A2B1","A2B2"]}',
    ],
    ids=["error_json", "async_warning", "html", "jsonstat_of_text"],
)
def test_not_data_exits_2_with_one_line(tmp_path, capsys, body):
    path = tmp_path / "bad.json"
    path.write_bytes(body)
    assert run("eurostat", "decode", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1


def test_missing_file_exits_2(tmp_path, capsys):
    assert run("eurostat", "decode", str(tmp_path / "nope.json")) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_module_entry_point(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "ingest.eurostat.commands", "decode", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {bad}: empty body"
