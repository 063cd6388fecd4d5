"""Eurostat's table of contents: one entry per dataset with its update stamps (the nightly's change detection)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from ingest.eurostat.envelope import gunzip
from ingest.eurostat.errors import EurostatPayloadError


@dataclass(frozen=True)
class TocEntry:
    """One line of the Eurostat table of contents."""

    code: str
    title: str
    type: str
    last_update: date | None
    last_structure_change: date | None
    data_start: str | None
    data_end: str | None


def _parse_date(text: str) -> date | None:
    text = (text or "").strip()
    for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_toc(body: bytes) -> dict[str, TocEntry]:
    """Parse the TOC text (tab-separated, quoted fields, indented titles) into entries keyed by code."""
    try:
        text = (gunzip(body, "toc") if body[:2] == b"\x1f\x8b" else body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EurostatPayloadError("toc", f"table of contents is not UTF-8 text ({exc})") from exc
    rows = csv.reader(io.StringIO(text), delimiter="\t", quotechar='"')
    header = [h.strip().lower() for h in next(rows, [])]
    if "code" not in header or "type" not in header:
        raise EurostatPayloadError("toc", f"table of contents without code/type columns (header {header[:8]})")
    at = {h: i for i, h in enumerate(header)}

    def cell(row: list[str], name: str) -> str:
        i = at.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    out: dict[str, TocEntry] = {}
    for row in rows:
        code = cell(row, "code")
        if not code:
            continue
        entry = TocEntry(
            code=code,
            title=cell(row, "title"),
            type=cell(row, "type"),
            last_update=_parse_date(cell(row, "last update of data")),
            last_structure_change=_parse_date(cell(row, "last table structure change")),
            data_start=cell(row, "data start") or None,
            data_end=cell(row, "data end") or None,
        )
        if code in out and out[code].type != "folder" and entry.type == "folder":
            continue
        out[code] = entry
    return out
