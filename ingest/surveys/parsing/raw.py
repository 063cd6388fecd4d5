"""Raw sections as the readers produce them, the input limits they enforce, and the file-level rejection."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ingest.config import Catalogue, load_catalogue
from ingest.surveys.problems import Problems

HEAD_CHARS = 1 << 20  # the header line is looked for in this much of the text, never in all of it


@dataclass
class RawRecord:
    row: int
    cells: dict[str, tuple[Any, int]]  # header -> (value, row)


@dataclass
class RawSection:
    headers: list[str]
    header_rows: dict[str, int]
    records: list[RawRecord]


class FileRejected(Exception):
    """A file-level error: nothing more can be read."""


@dataclass(frozen=True)
class Limits:
    """Input bounds of a parse (``catalogue.yml`` sources.surveys, defaults in ``config.INPUT_LIMITS``)."""

    zip_members: int
    decompressed_bytes: int
    compression_ratio: float
    cells: int
    rows: int
    json_depth: int
    field_bytes: int

    @classmethod
    def of(cls, catalogue: Catalogue | None = None) -> Limits:
        lim = (catalogue or load_catalogue()).limits("surveys")
        return cls(
            zip_members=int(lim["max_zip_members"]),
            decompressed_bytes=int(lim["max_decompressed_bytes"]),
            compression_ratio=float(lim["max_compression_ratio"]),
            cells=int(lim["max_cells"]),
            rows=int(lim["max_rows"]),
            json_depth=int(lim["max_json_depth"]),
            field_bytes=int(lim["max_field_bytes"]),
        )


def first_line(text: str) -> str:
    """First non-blank line of the text (looked for in its head only: bounded work on any input)."""
    return next((ln for ln in text[:HEAD_CHARS].splitlines() if ln.strip()), "")


def over_limit(pr: Problems | None, code: str, reason: str, **kw: object) -> None:
    """A limit is exceeded: a file error (or, when scoring without problems, just stop reading)."""
    if pr is not None:
        pr.error(code, reason, **kw)
    raise FileRejected


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def table_section(rows: list[tuple[int, list[Any]]]) -> RawSection:
    """Header = first non-blank row; records = following non-blank rows."""
    rows = [(n, r) for n, r in rows if any(not is_blank(v) for v in r)]
    if not rows:
        return RawSection([], {}, [])
    hrow, header = rows[0]
    headers = [("" if is_blank(h) else str(h)) for h in header]
    while headers and not headers[-1]:
        headers.pop()
    records = [
        RawRecord(n, {h: (r[i] if i < len(r) else None, n) for i, h in enumerate(headers) if h}) for n, r in rows[1:]
    ]
    return RawSection([h for h in headers if h], {h: hrow for h in headers if h}, records)
