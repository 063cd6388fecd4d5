"""Every survey input is bounded before it can exhaust memory or disk, each limit with its own problem code.

The bombs are built at run time (tests/bombs.py) and parsed in a child process whose peak RSS must stay under
512 MiB: a workbook declaring A1:XFD1048576, one with real cells in column XFD, an XLSX zip bomb (1 GiB sheet
XML), 100,000 nested JSON arrays, and an inbox file of 640 MiB (archived by streaming, quarantined at extract).
Smaller limits (rows, cells, fields, members, uncompressed size) are exercised in-process through a catalogue
with lower limits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ingest.archive import Archive, Received
from ingest.config import load_catalogue
from tests import bombs
from tests.conftest import query
from tests.surveys.conftest import assert_located, edit_csv, edit_json, parse, sample_bytes, set_cell

RSS_LIMIT_MIB = 512
EPSI = ("epsi", "sme_needs")
INDESCAT = ("indescat", "sme_needs")
KOBO = ("mse_cluster", "sme_needs")


def only_error(r, code: str):
    """The file is rejected with exactly this one error code."""
    assert [p.code for p in r.errors] == [code], [p.message for p in r.problems]
    assert r.tables == {}
    p = r.errors[0]
    assert_located(p)
    return p


def with_limits(**limits) -> object:
    cat = load_catalogue()
    return dataclasses.replace(cat, sources={**cat.sources, "surveys": {**cat.sources["surveys"], **limits}})


@pytest.fixture(scope="module")
def bomb_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bombs")


# ----------------------------------------------------------------------------------------------- bombs (child)
def test_declared_dimension_is_ignored(bomb_dir: Path) -> None:
    path = bombs.declared_dimension_xlsx(bomb_dir / "indescat_necesidades_pymes_2025.xlsx")
    data, name = sample_bytes(*INDESCAT)
    expected = parse(data, name, "indescat").row_counts
    got = bombs.probe_survey(path, *INDESCAT)
    assert got.reason == "ok", got.message
    assert got.extra["rows"] == expected  # the same cells as the untouched sample, nothing padded
    assert got.rss_mib < RSS_LIMIT_MIB, got


def test_real_cells_in_column_xfd_are_too_many_cells(bomb_dir: Path) -> None:
    got = bombs.probe_survey(bombs.wide_rows_xlsx(bomb_dir / "wide.xlsx"), *INDESCAT)
    assert got.reason == "too_many_cells", got.message
    assert "1000000 cells" in got.message
    assert got.rss_mib < RSS_LIMIT_MIB, got


def test_xlsx_zip_bomb_is_refused_before_parsing(bomb_dir: Path) -> None:
    path = bombs.zip_bomb_xlsx(bomb_dir / "bomb.xlsx")
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(bombs.SHEET).file_size >= bombs.GIB - bombs.MIB
    assert path.stat().st_size < 8 * bombs.MIB
    got = bombs.probe_survey(path, *INDESCAT)
    assert got.reason == "compression_bomb", got.message
    assert "expected <= 100x its compressed size" in got.message
    assert got.rss_mib < RSS_LIMIT_MIB, got


def test_deeply_nested_json_is_json_too_deep(bomb_dir: Path) -> None:
    path = bomb_dir / "kobo_deep.json"
    path.write_bytes(bombs.deep_json(100_000))
    got = bombs.probe_survey(path, *KOBO)
    assert got.reason == "json_too_deep", got.message
    assert got.rss_mib < RSS_LIMIT_MIB, got


def test_oversized_inbox_file_is_archived_by_streaming_and_quarantined(bomb_dir: Path, fresh_db: str) -> None:
    size = 640 * bombs.MIB  # beyond the RSS bound itself: it cannot have been held in memory
    inbox, archive = bomb_dir / "inbox", bomb_dir / "archive"
    path = bombs.oversized_inbox_file(inbox / "epsi" / "sme_needs" / "results-huge.csv", size)
    try:
        _check_oversized(bombs.probe_extract(inbox, archive), path, archive, size)
    finally:
        shutil.rmtree(archive, ignore_errors=True)  # 640 MiB of real bytes: do not leave them in the temp dir


def _check_oversized(got: bombs.Probe, path: Path, archive: Path, size: int) -> None:
    assert got.reason == "file_too_large", got.message
    assert f"found '{size} bytes'" in got.message and "expected <= 20000000 bytes" in got.message
    assert got.extra["result"] == {"new": 1, "already_processed": 0}
    assert got.extra["fetch_sizes"] == [size]
    assert got.rss_mib < RSS_LIMIT_MIB, got
    # every byte received is archived as received
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bombs.CHUNK):
            digest.update(chunk)
    stored = Archive(archive).path_of(digest.hexdigest())
    assert stored.stat().st_size == size
    assert Archive(archive).provenance(digest.hexdigest())[0]["size"] == size
    assert not list((archive / "sha256").glob(".tmp-*"))
    # and the reason is beside the file
    doc = json.loads(Path(str(path) + ".quarantine.json").read_text())
    assert [p["code"] for p in doc["problems"]] == ["file_too_large"]


# ----------------------------------------------------------------------------------------------- extract (in-process)
def test_file_grown_after_listing_is_read_at_most_limit_plus_one(tmp_path, monkeypatch, fresh_db) -> None:
    import ingest.surveys.inbox as inbox_mod
    import ingest.tasks.surveys as surveys
    from ingest.tasks.common import RunContext

    monkeypatch.setitem(load_catalogue().sources["surveys"], "max_file_bytes", 1000)
    monkeypatch.setenv("SS4GL_ARCHIVE", str(tmp_path / "archive"))
    path = bombs.oversized_inbox_file(tmp_path / "inbox" / "epsi" / "sme_needs" / "grown.csv", 5000)
    listed = inbox_mod.list_inbox
    monkeypatch.setattr(  # listed while still small
        inbox_mod, "list_inbox", lambda url: [dataclasses.replace(f, size=10) for f in listed(url)]
    )
    reads: list[int | None] = []
    real_read = inbox_mod.read
    monkeypatch.setattr(inbox_mod, "read", lambda f, max_bytes=None: reads.append(max_bytes) or real_read(f, max_bytes))
    assert surveys.extract(RunContext("bounded", "2026-11-28"), inbox=str(tmp_path / "inbox"))["new"] == 1
    assert reads == [1000]
    assert query(fresh_db, "select code from audit.quarantine") == [("file_too_large",)]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert Archive(tmp_path / "archive").get(sha) == path.read_bytes()


def test_put_stream_matches_put_and_is_write_once(tmp_path) -> None:
    import io

    archive = Archive(tmp_path / "archive")
    body = b"x" * 3_000_001
    sha, size = archive.put_stream(io.BytesIO(body), source="surveys", url="inbox/a.csv", chunk_size=65536)
    assert (sha, size) == (hashlib.sha256(body).hexdigest(), len(body))
    assert archive.put(Received(body=body, source="surveys", url="inbox/b.csv")) == sha
    before = archive.path_of(sha).stat().st_mtime_ns
    assert archive.put_stream(io.BytesIO(body), source="surveys", url="inbox/c.csv")[0] == sha
    assert archive.path_of(sha).stat().st_mtime_ns == before  # kept, not rewritten
    assert archive.get(sha) == body
    assert [p["url"] for p in archive.provenance(sha)] == ["inbox/a.csv", "inbox/b.csv", "inbox/c.csv"]
    assert not list((tmp_path / "archive" / "sha256").glob(".tmp-*"))


# ----------------------------------------------------------------------------------------------- xlsx limits
def test_xlsx_members_and_uncompressed_size_are_capped() -> None:
    data, name = sample_bytes(*INDESCAT)
    p = only_error(parse(data, name, "indescat", catalogue=with_limits(max_zip_members=5)), "xlsx_too_large")
    assert "<= 5 members" in p.message and "10 members" in p.message
    p = only_error(
        parse(data, name, "indescat", catalogue=with_limits(max_decompressed_bytes=100_000)), "xlsx_too_large"
    )
    assert "<= 100000 bytes uncompressed" in p.message


def test_zip_with_more_members_than_the_default_limit() -> None:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(1001):
            zf.writestr(f"m{i}.xml", b"")
    p = only_error(parse(buf.getvalue(), "many.xlsx", "indescat"), "xlsx_too_large")
    assert "1001 members" in p.message


def test_xlsx_rows_and_cells_are_capped() -> None:
    data, name = sample_bytes(*INDESCAT)
    only_error(parse(data, name, "indescat", catalogue=with_limits(max_rows=10)), "too_many_rows")
    only_error(parse(data, name, "indescat", catalogue=with_limits(max_cells=500)), "too_many_cells")
    assert parse(data, name, "indescat").ok  # the defaults leave the bundled samples alone


def test_corrupt_and_encrypted_workbooks_keep_their_codes() -> None:
    data, name = sample_bytes(*INDESCAT)
    only_error(parse(data[: len(data) // 2], name, "indescat"), "corrupt_xlsx")
    only_error(parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096, name, "indescat"), "encrypted_xlsx")


# ----------------------------------------------------------------------------------------------- json limits
def test_json_depth_is_checked_without_recursion() -> None:
    data, name = sample_bytes(*KOBO)

    def nest(doc: dict) -> None:
        deep: dict = {"leaf": "x"}
        for _ in range(70):
            deep = {"n": deep}
        doc["results"][0]["deep"] = deep

    p = only_error(parse(edit_json(data, nest), name, "mse_cluster"), "json_too_deep")
    assert "<= 64 levels" in p.message
    only_error(parse(bombs.deep_json(2000), name, "mse_cluster"), "json_too_deep")  # orjson's own bound
    assert parse(data, name, "mse_cluster").ok


def test_json_records_and_cells_are_capped() -> None:
    data, name = sample_bytes(*KOBO)
    only_error(parse(data, name, "mse_cluster", catalogue=with_limits(max_rows=10)), "too_many_rows")
    only_error(parse(data, name, "mse_cluster", catalogue=with_limits(max_cells=100)), "too_many_cells")


def test_other_json_failures_stay_clean_problems() -> None:
    for bad in (b'{"results": [', b'{"results": [NaN]}', b"[1, 2,]", b'{"results": 5}'):
        r = parse(bad, "kobo.json", "mse_cluster")
        assert [p.code for p in r.errors] == ["invalid_json"], (bad, [p.message for p in r.problems])


# ----------------------------------------------------------------------------------------------- csv limits
def test_csv_field_over_the_limit() -> None:
    data, name = sample_bytes(*EPSI)
    secret = "confidential " * 6000  # 78,000 bytes: over max_field_bytes (65536), under csv's own 131072
    p = only_error(
        parse(edit_csv(data, "utf-8", ",", lambda rows: set_cell(rows, 3, "COMMENTS", secret)), name, "epsi"),
        "field_too_large",
    )
    assert (p.row, p.column) == (4, "COMMENTS")
    assert "confidential" not in p.message and "<= 65536 bytes a field" in p.message
    huge = "y" * 200_000  # beyond the csv module's own cap: the same reason
    p = only_error(
        parse(edit_csv(data, "utf-8", ",", lambda rows: set_cell(rows, 2, "COMMENTS", huge)), name, "epsi"),
        "field_too_large",
    )
    assert "yyy" not in p.message


def test_csv_rows_and_cells_are_capped() -> None:
    data, name = sample_bytes(*EPSI)
    only_error(parse(data, name, "epsi", catalogue=with_limits(max_rows=10)), "too_many_rows")
    only_error(parse(data, name, "epsi", catalogue=with_limits(max_cells=1000)), "too_many_cells")
    blank_lines = data + b"\r\n" * 200_000  # 400 kB of nothing is still more rows than allowed
    only_error(parse(blank_lines, name, "epsi"), "too_many_rows")
    assert parse(data, name, "epsi").ok
