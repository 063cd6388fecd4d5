"""``<file>.quarantine.json`` is written without following a symlink already at that name (local disk), and
through ``pipe_file`` on remote fsspec filesystems; its problems never echo what a respondent typed."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import fsspec
import pytest

from ingest.surveys.inbox import QUARANTINE_SUFFIX, list_inbox, write_reason
from ingest.surveys.problems import make_problem

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")


def _problem(file: str = "epsi/sme_needs/bad.csv"):
    return make_problem(
        "error",
        "unknown_nuts3",
        file,
        "unknown nuts3 code",
        row=2,
        column="NUTS3",
        expected="a NUTS-3 code in BE10",
        found="Jan Müller",
    )


def _inbox(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "inbox" / "epsi" / "sme_needs"
    folder.mkdir(parents=True)
    (folder / "bad.csv").write_bytes(b"id\n1\n")
    return tmp_path / "inbox", folder / "bad.csv"


def test_symlink_at_sidecar_name_is_replaced_not_written_through(tmp_path: Path, caplog) -> None:
    inbox, bad = _inbox(tmp_path)
    outside = tmp_path / "outside" / "precious.txt"
    outside.parent.mkdir()
    outside.write_text("do not touch\n", encoding="utf-8")
    side = Path(str(bad) + QUARANTINE_SUFFIX)
    side.symlink_to(outside)

    (f,) = list_inbox(str(inbox))
    with caplog.at_level(logging.WARNING, logger="ingest.surveys.inbox"):
        target = write_reason(f, [_problem()])

    assert Path(target) == side
    assert outside.read_text(encoding="utf-8") == "do not touch\n"  # the link's target is untouched
    assert not side.is_symlink() and side.is_file()
    doc = json.loads(side.read_text(encoding="utf-8"))
    assert doc["problems"][0]["code"] == "unknown_nuts3" and doc["problems"][0]["found"] == "text of 10 characters"
    assert "Müller" not in side.read_text(encoding="utf-8")
    assert len([r for r in caplog.records if "symlink" in r.getMessage()]) == 1
    assert "\n" not in caplog.records[-1].getMessage()
    # no temp file left behind; the sidecar is not listed as an inbox file
    assert sorted(p.name for p in bad.parent.iterdir()) == ["bad.csv", "bad.csv" + QUARANTINE_SUFFIX]
    assert [g.name for g in list_inbox(str(inbox))] == ["bad.csv"]


def test_dangling_symlink_and_plain_path(tmp_path: Path) -> None:
    _, bad = _inbox(tmp_path)
    side = Path(str(bad) + QUARANTINE_SUFFIX)
    missing = tmp_path / "outside-missing.json"
    side.symlink_to(missing)
    write_reason(str(bad), [_problem().to_dict()])
    assert not missing.exists()  # not created through the link
    assert not side.is_symlink() and json.loads(side.read_text(encoding="utf-8"))["problems"]


def test_rewrite_replaces_an_existing_sidecar(tmp_path: Path) -> None:
    _, bad = _inbox(tmp_path)
    write_reason(str(bad), [_problem()])
    write_reason(str(bad), [])
    side = Path(str(bad) + QUARANTINE_SUFFIX)
    assert json.loads(side.read_text(encoding="utf-8"))["problems"] == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert side.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file the pipeline writes, not 0600


def test_remote_filesystem_uses_pipe_file() -> None:
    fs = fsspec.filesystem("memory")
    root = "/sidecar-test"
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.pipe_file(f"{root}/epsi/sme_needs/x.csv", b"id\n1\n")
    (f,) = list_inbox(f"memory://{root}")
    target = write_reason(f, [_problem()])
    doc = json.loads(fs.cat_file(target))
    assert doc["problems"][0]["found"] == "text of 10 characters"
