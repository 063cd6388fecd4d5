"""Inbox listing on fsspec filesystems, misplaced files, quarantine reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fsspec
import pytest

from ingest.surveys.inbox import list_inbox, quarantine_document, read, write_reason
from ingest.surveys.parse import parse_file
from tests.surveys.conftest import INBOX, KEY
from tools.survey_samples import SAMPLES


def test_lists_the_sample_inbox() -> None:
    files = list_inbox(str(INBOX))
    assert len(files) == len(SAMPLES)
    assert all(f.ok for f in files)
    assert {(f.cluster, f.instrument, f.name) for f in files} == {
        (s.cluster, s.instrument, s.filename) for s in SAMPLES
    }
    f = files[0]
    assert read(f) == Path(f.path).read_bytes() and f.size == len(read(f))


@pytest.fixture
def mem_inbox() -> str:
    fs = fsspec.filesystem("memory")
    root = "/inbox-test"
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.pipe_file(f"{root}/epsi/sme_needs/ok.csv", b"id\n1\n")
    fs.pipe_file(f"{root}/atlantis/sme_needs/x.csv", b"id\n1\n")
    fs.pipe_file(f"{root}/epsi/census/y.csv", b"id\n1\n")
    fs.pipe_file(f"{root}/epsi/z.csv", b"id\n1\n")
    fs.pipe_file(f"{root}/epsi/sme_needs/old.csv.quarantine.json", b"{}")
    fs.pipe_file(f"{root}/README.md", b"docs")
    return f"memory://{root}"


def test_misplaced_files_carry_problems(mem_inbox: str) -> None:
    files = {f.name: f for f in list_inbox(mem_inbox)}
    assert set(files) == {"ok.csv", "x.csv", "y.csv", "z.csv"}
    assert files["ok.csv"].ok
    (p,) = files["x.csv"].problems
    assert p.code == "unknown_cluster_folder" and p.found == "atlantis" and "atlantis/sme_needs/x.csv" in p.message
    assert [p.code for p in files["y.csv"].problems] == ["unknown_instrument"]
    assert [p.code for p in files["z.csv"].problems] == ["wrong_depth"]
    assert files["ok.csv"].path.startswith("memory://")
    assert read(files["ok.csv"]) == b"id\n1\n"


def test_write_reason_beside_file(mem_inbox: str) -> None:
    f = next(f for f in list_inbox(mem_inbox) if f.name == "x.csv")
    target = write_reason(f, f.problems)
    doc = json.loads(fsspec.filesystem("memory").cat_file(target))
    assert target.endswith("atlantis/sme_needs/x.csv.quarantine.json")
    (p,) = doc["problems"]
    assert set(p) == {"severity", "code", "file", "row", "column", "expected", "found", "message"}
    assert p["code"] == "unknown_cluster_folder"
    assert all(g.name != "x.csv.quarantine.json" for g in list_inbox(mem_inbox))


def test_parse_problems_as_quarantine_json_on_local_disk(tmp_path: Path) -> None:
    spec = next(s for s in SAMPLES if s.cluster == "epsi" and s.instrument == "sme_needs")
    target = tmp_path / "epsi" / "sme_needs"
    target.mkdir(parents=True)
    shutil.copy(INBOX / "epsi" / "sme_needs" / spec.filename, target / "bad.csv")
    (target / "bad.csv").write_bytes((target / "bad.csv").read_bytes()[:200])  # header cut short
    (f,) = list_inbox(str(tmp_path))
    r = parse_file(read(f), f.name, f.cluster, f.instrument, key=KEY)
    assert not r.ok
    path = write_reason(f, r.problems)
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    assert doc["file"] == "epsi/sme_needs/bad.csv" and doc["problems"][0]["message"]
    # the lead's task passes a plain path and dicts
    write_reason(str(target / "bad.csv"), [p.to_dict() for p in r.problems])
    assert quarantine_document(f, r.problems)["problems"][0]["code"] == r.problems[0].code


def test_missing_inbox_is_empty(tmp_path: Path) -> None:
    assert list_inbox(str(tmp_path / "nope")) == []
