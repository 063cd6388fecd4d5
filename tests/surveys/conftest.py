"""Helpers for survey tests: sample files, a fixed test key, and byte-level mutators of sample exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from ingest.surveys.parse import ParseResult, parse_file
from tools.survey_samples import INBOX, SAMPLES, SampleSpec, sample_path

KEY = b"unit-test-key-0123456789"


def spec_of(cluster: str, instrument: str, wave: int = 2025) -> SampleSpec:
    return next(s for s in SAMPLES if (s.cluster, s.instrument, s.wave) == (cluster, instrument, wave))


def sample_bytes(cluster: str, instrument: str, wave: int = 2025) -> tuple[bytes, str]:
    spec = spec_of(cluster, instrument, wave)
    return sample_path(spec).read_bytes(), spec.filename


def parse(data: bytes, name: str, cluster: str, instrument: str = "sme_needs", **kw: Any) -> ParseResult:
    return parse_file(data, name, cluster, instrument, key=KEY, **kw)


def edit_csv(
    data: bytes, encoding: str, delimiter: str, fn: Callable[[list[list[str]]], None], bom: bool | None = None
) -> bytes:
    """Decode a CSV export, let ``fn`` edit its rows in place (row 0 = header), encode it back."""
    text = data.decode("utf-8-sig" if encoding.startswith("utf") else encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    fn(rows)
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    had_bom = data.startswith(b"\xef\xbb\xbf")
    out = buf.getvalue().encode("utf-8" if encoding.startswith("utf") else encoding)
    return (b"\xef\xbb\xbf" + out) if (had_bom if bom is None else bom) else out


def set_cell(rows: list[list[str]], data_row: int, header: str, value: str) -> None:
    """Set a cell by header name; ``data_row`` 1 = first data row (file row 2)."""
    rows[data_row][rows[0].index(header)] = value


def edit_xlsx(data: bytes, fn: Callable[[openpyxl.Workbook], None]) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    fn(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def edit_json(data: bytes, fn: Callable[[dict], None]) -> bytes:
    doc = json.loads(data)
    fn(doc)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def assert_located(p: Any) -> None:
    """The one-line message names the file, the row and the column."""
    assert "\n" not in p.message
    assert p.file in p.message
    assert f"row {p.row if p.row is not None else '-'}" in p.message
    assert f"column {p.column if p.column else '-'}" in p.message


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("SS4GL_PSEUDONYM_KEY", raising=False)
    for k in list(os.environ):
        if k == "AIRFLOW_HOME" or k.startswith("AIRFLOW__"):
            monkeypatch.delenv(k, raising=False)


__all__ = ["INBOX", "KEY", "SAMPLES", "Path"]
