"""``surveys check`` through a tiny argparse parser built here (ingest/cli.py belongs to the lead)."""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from ingest.surveys.commands import register
from tests.surveys.conftest import INBOX


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="t")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.func(args, out=out), out.getvalue()


def test_check_ok_without_key(no_key_env: None) -> None:
    path = INBOX / "cluster_montagne" / "sme_needs" / "results-survey482915.csv"
    code, out = run(["surveys", "check", str(path)])
    assert code == 0
    assert out.startswith("OK: would load ") and "raw.survey_sme_respondents (112)" in out


def test_check_explicit_cluster_and_instrument(no_key_env: None, tmp_path: Path) -> None:
    src = INBOX / "indescat" / "state_of_affairs" / "state_of_affairs_2025.xlsx"
    dst = tmp_path / "soa.xlsx"
    shutil.copy(src, dst)
    code, out = run(["surveys", "check", str(dst), "--cluster", "indescat", "--instrument", "state_of_affairs"])
    assert code == 0 and "raw.survey_soa_swot (8)" in out


def test_check_quarantine_lists_problems_and_writes_nothing(no_key_env: None, tmp_path: Path) -> None:
    folder = tmp_path / "epsi" / "sme_needs"
    folder.mkdir(parents=True)
    bad = folder / "bad.csv"
    data = (INBOX / "epsi" / "sme_needs" / "results-survey771203.csv").read_bytes()
    bad.write_bytes(data.replace(b",A1,", b",A9,", 1))
    before = sorted(tmp_path.rglob("*"))
    code, out = run(["surveys", "check", str(bad)])
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("QUARANTINE: bad.csv: 1 errors")
    assert any(ln.startswith("ERROR unknown_code: bad.csv: row ") and "column SIZE" in ln for ln in lines[1:])
    assert sorted(tmp_path.rglob("*")) == before


def test_check_oversize_and_unreadable(no_key_env: None, tmp_path: Path) -> None:
    path = INBOX / "epsi" / "sme_needs" / "results-survey771203.csv"
    code, out = run(["surveys", "check", str(path), "--max-bytes", "10"])
    assert code == 1 and "file_too_large" in out
    code, out = run(
        ["surveys", "check", str(tmp_path / "missing.csv"), "--cluster", "epsi", "--instrument", "sme_needs"]
    )
    assert code == 1 and out.startswith("QUARANTINE")
