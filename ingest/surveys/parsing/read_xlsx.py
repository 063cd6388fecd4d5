"""XLSX reading: the zip checked against the limits before any XML is parsed, sheets -> rows -> raw sections."""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

from ingest.surveys.parsing.raw import (
    FileRejected,
    Limits,
    RawRecord,
    RawSection,
    is_blank,
    over_limit,
    table_section,
)
from ingest.surveys.privacy import known
from ingest.surveys.problems import Problems
from ingest.surveys.spec import Codebook, norm

ZIP_MAGIC = b"PK\x03\x04"
RATIO_FLOOR = 1 << 20  # a zip member's compression ratio is checked once it expands beyond this


def _check_zip(data: bytes, pr: Problems, limits: Limits) -> None:
    """Refuse a workbook whose zip would expand beyond the limits, before any of its XML is parsed.

    The member count is read from the end-of-central-directory record first (a zip can list more members
    than memory holds); zipfile then never yields more than a member's declared size, so the declared sizes
    bound what openpyxl can read.
    """
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd != -1 and len(data) >= eocd + 22:
        members, directory = struct.unpack_from("<HI", data, eocd + 10)
        if members > limits.zip_members or directory > limits.zip_members * 1024:
            over_limit(
                pr,
                "xlsx_too_large",
                "workbook zip has more members than the configured limit",
                expected=f"<= {limits.zip_members} members",
                found=known(f"{members} members ({directory} bytes of directory)"),
            )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    if len(infos) > limits.zip_members:
        over_limit(
            pr,
            "xlsx_too_large",
            "workbook zip has more members than the configured limit",
            expected=f"<= {limits.zip_members} members",
            found=known(f"{len(infos)} members"),
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > limits.compression_ratio:
            over_limit(
                pr,
                "compression_bomb",
                "a workbook zip member expands beyond the configured compression ratio",
                expected=f"<= {limits.compression_ratio:g}x its compressed size",
                found=known(f"{info.file_size} bytes from {info.compress_size} ({ratio:.0f}x)"),
            )
    total = sum(info.file_size for info in infos)
    if total > limits.decompressed_bytes:
        over_limit(
            pr,
            "xlsx_too_large",
            "workbook expands beyond the configured uncompressed size",
            expected=f"<= {limits.decompressed_bytes} bytes uncompressed",
            found=known(f"{total} bytes uncompressed"),
        )


def _sheet_rows(ws: Any, pr: Problems, limits: Limits, cells: int) -> tuple[list[tuple[int, list[Any]]], int]:
    """Rows of a read-only worksheet holding a value, trailing empty cells trimmed; ``cells`` counts on.

    The declared ``<dimension>`` (which may claim A1:XFD1048576) is ignored: only cells present are read.
    """
    ws.reset_dimensions()
    rows: list[tuple[int, list[Any]]] = []
    for i, r in enumerate(ws.iter_rows(values_only=True), start=1):
        n = len(r)
        while n and r[n - 1] is None:
            n -= 1
        if not n:
            continue
        if i > limits.rows + 1:  # header + rows
            over_limit(
                pr,
                "too_many_rows",
                "sheet has more rows than the configured limit",
                row=i,
                column="-",
                expected=f"<= {limits.rows} data rows",
                found=known(f"a value in row {i}"),
            )
        cells += n
        if cells > limits.cells:
            over_limit(
                pr,
                "too_many_cells",
                "workbook has more cells (rows x columns) than the configured limit",
                row=i,
                column="-",
                expected=f"<= {limits.cells} cells",
                found=known(f"> {limits.cells} cells"),
            )
        rows.append((i, list(r[:n])))
    return rows, cells


def read_workbook(data: bytes, pr: Problems, limits: Limits | None = None) -> dict[str, list[tuple[int, list[Any]]]]:
    """Sheet title -> its rows (:func:`_sheet_rows`); a workbook that is no zip, too large or corrupt is a file
    error."""
    import openpyxl  # local: only needed for workbooks

    limits = limits or Limits.of()
    if not data.startswith(ZIP_MAGIC):
        pr.error(
            "corrupt_xlsx",
            "file is named like a workbook but is not an XLSX (zip) container",
            expected="XLSX (zip, magic PK\\x03\\x04)",
            found=known(f"magic bytes {data[:4].hex(' ')}"),
        )
        raise FileRejected
    try:
        _check_zip(data, pr, limits)
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        try:
            sheets, cells = {}, 0
            for ws in wb.worksheets:
                sheets[ws.title], cells = _sheet_rows(ws, pr, limits, cells)
        finally:
            wb.close()
    except FileRejected:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        pr.error(
            "corrupt_xlsx",
            f"workbook cannot be opened ({type(exc).__name__}: {exc})",
            expected="a valid XLSX workbook",
            found=known("corrupt zip/xml"),
        )
        raise FileRejected from exc
    except Exception as exc:  # openpyxl raises assorted errors on damaged parts
        pr.error(
            "corrupt_xlsx",
            f"workbook cannot be opened ({type(exc).__name__})",
            expected="a valid XLSX workbook",
            found=known("corrupt workbook"),
        )
        raise FileRejected from exc
    return sheets


def _keyvalue(rows: list[tuple[int, list[Any]]], label_col: str | None, value_col: str | None) -> RawSection:
    """Two-column label/value sheet -> one record whose 'columns' are the labels."""
    rows = [(n, r) for n, r in rows if any(not is_blank(v) for v in r)]
    if not rows:
        return RawSection([], {}, [])
    header = [norm(h) if not is_blank(h) else "" for h in rows[0][1]]
    li = header.index(norm(label_col)) if label_col and norm(label_col) in header else None
    vi = header.index(norm(value_col)) if value_col and norm(value_col) in header else None
    if li is None or vi is None:
        return RawSection([], {}, [])
    cells: dict[str, tuple[Any, int]] = {}
    headers: list[str] = []
    for n, r in rows[1:]:
        label = r[li] if li < len(r) else None
        if is_blank(label):
            continue
        label = str(label)
        headers.append(label)
        cells[label] = (r[vi] if vi < len(r) else None, n)
    rec = [RawRecord(min(c[1] for c in cells.values()), cells)] if cells else []
    return RawSection(headers, {h: cells[h][1] for h in headers}, rec)


def xlsx_sections(sheets: dict[str, list[tuple[int, list[Any]]]], cb: Codebook) -> dict[str, RawSection]:
    """The codebook's sections found among the sheets: tables, or label/value sheets when it names a label
    column; a section whose sheet is absent is left out."""
    by_norm = {norm(name): rows for name, rows in sheets.items()}
    out = {}
    for name, s in cb.sections.items():
        rows = by_norm.get(norm(s.sheet)) if s.sheet else None
        if rows is None and len(cb.sections) == 1:
            rows = next(iter(sheets.values()), None)  # single-sheet layouts: sheet names vary by export
        if rows is None:
            continue
        out[name] = _keyvalue(rows, s.label_column, s.value_column) if s.label_column else table_section(rows)
    return out
