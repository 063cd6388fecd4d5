"""The reader a file needs: its layout sniffed from its bytes and name, raw sections read as a codebook's layout
says."""

from __future__ import annotations

from typing import Any

from ingest.surveys.parsing.raw import FileRejected, Limits, RawSection, first_line, table_section
from ingest.surveys.parsing.read_csv import csv_rows, decode_csv, sniff_delimiter
from ingest.surveys.parsing.read_json import json_records
from ingest.surveys.parsing.read_long import long_sections
from ingest.surveys.parsing.read_xlsx import ZIP_MAGIC, xlsx_sections
from ingest.surveys.problems import Problems
from ingest.surveys.spec import Codebook

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def sniff_layout(data: bytes, filename: str) -> str:
    """``ole`` (protected workbook or legacy .xls), ``xlsx``, ``json`` or ``csv``: the codebook family to try."""
    if data.startswith(OLE_MAGIC):
        return "ole"
    if data.startswith(ZIP_MAGIC):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xlsm")):
        return "xlsx"  # claims to be a workbook but is not a zip: reported as corrupt
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"[") or filename.lower().endswith(".json"):
        return "json"
    return "csv"


def read_sections(
    data: bytes,
    cb: Codebook,
    pr: Problems,
    sheets: dict[str, list[tuple[int, list[Any]]]] | None,
    limits: Limits | None = None,
) -> dict[str, RawSection]:
    """Raw sections of the file as this codebook would read it."""
    if cb.layout == "xlsx":
        assert sheets is not None
        return xlsx_sections(sheets, cb)
    if cb.layout == "json":
        return {next(iter(cb.sections)): json_records(data, cb, pr, limits)}
    text = decode_csv(data, cb, pr)
    delim = sniff_delimiter(first_line(text))
    rows = csv_rows(text, delim, pr, limits)
    if cb.layout == "csv":
        return {next(iter(cb.sections)): table_section(rows)}
    return long_sections(rows, cb, pr)


def quiet_sections(
    data: bytes, cb: Codebook, sheets: dict | None, limits: Limits | None = None
) -> dict[str, RawSection]:
    """Raw sections for scoring only (lenient decoding, sniffed delimiter, no problems kept)."""
    scratch = Problems("")
    if cb.family == "csv":
        enc = cb.encoding.lower()
        text = data.decode("utf-8-sig" if enc.startswith("utf") or enc == "auto" else enc, errors="replace")
        text = text.lstrip("\ufeff")
        rows = csv_rows(text, sniff_delimiter(first_line(text)), None, limits)
        return (
            {next(iter(cb.sections)): table_section(rows)} if cb.layout == "csv" else long_sections(rows, cb, scratch)
        )
    try:
        return read_sections(data, cb, scratch, sheets, limits)
    except FileRejected:
        return {}
