"""Parse one survey export into canonical raw tables, driven by the contract and the codebooks.

Pipeline: size/emptiness checks -> layout sniffing (xlsx / OLE / json / csv) -> read into raw sections ->
pick the codebook whose headers match best (ties: fewest errors, then the cluster's language) -> map columns
onto contract fields, convert answer labels, validate codes -> pseudonymise, drop and scrub personal data ->
reshape into the contract's tables. Any error quarantines the whole file (``tables`` is then empty).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd

from ingest.config import Catalogue, load_catalogue
from ingest.surveys.privacy import known, pseudonymise, scrub
from ingest.surveys.problems import Problem, Problems
from ingest.surveys.spec import (
    DECIMAL_LIMIT,
    INTEGER_RANGE,
    LIKERT_MAX,
    LIKERT_MIN,
    TEXT_MAX_CHARS,
    Codebook,
    CodebookSection,
    Contract,
    FieldSpec,
    SectionSpec,
    Target,
    allowed_codes,
    load_codebooks,
    load_contract,
    norm,
)

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SINGLE_BYTE_ENCODINGS = {"cp1252", "windows-1252", "latin-1", "latin1", "iso-8859-1", "iso-8859-15"}
PREFIX_COLUMNS = ["file_sha256", "cluster", "wave"]
DTYPES = {
    "string": "string",
    "text": "string",
    "code": "string",
    "date": "string",
    "integer": "Int64",
    "likert": "Int64",
    "decimal": "Float64",
    "boolean": "boolean",
}
EXTRA_DTYPES = {
    "file_sha256": "string",
    "cluster": "string",
    "wave": "Int64",
    "source_row": "Int64",
    "respondent_pid": "string",
    "formula_like": "boolean",
    "service": "string",
    "sector": "string",
    "direction": "string",
    "code": "string",
    "used_12m": "boolean",
    "priority_top3": "boolean",
}
UNKNOWN_CODE_PROBLEM = {
    "services": "unknown_service",
    "nuts3": "unknown_nuts3",
    "nace": "unknown_nace",
    "clusters": "unknown_cluster",
}


@dataclass
class ParseResult:
    """Outcome of parsing one file. ``tables`` is empty unless ``ok``."""

    file: str
    cluster: str
    instrument: str
    file_sha256: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    codebook: str | None = None
    wave: int | None = None

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.tables.items()}


# --------------------------------------------------------------------------------------------- raw reading
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


RATIO_FLOOR = 1 << 20  # a zip member's compression ratio is checked once it expands beyond this
HEAD_CHARS = 1 << 20  # the header line is looked for in this much of the text, never in all of it


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


def _first_line(text: str) -> str:
    """First non-blank line of the text (looked for in its head only: bounded work on any input)."""
    return next((ln for ln in text[:HEAD_CHARS].splitlines() if ln.strip()), "")


def _over(pr: Problems | None, code: str, reason: str, **kw: object) -> None:
    """A limit is exceeded: a file error (or, when scoring without problems, just stop reading)."""
    if pr is not None:
        pr.error(code, reason, **kw)
    raise FileRejected


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _table(rows: list[tuple[int, list[Any]]]) -> RawSection:
    """Header = first non-blank row; records = following non-blank rows."""
    rows = [(n, r) for n, r in rows if any(not _blank(v) for v in r)]
    if not rows:
        return RawSection([], {}, [])
    hrow, header = rows[0]
    headers = [("" if _blank(h) else str(h)) for h in header]
    while headers and not headers[-1]:
        headers.pop()
    records = [
        RawRecord(n, {h: (r[i] if i < len(r) else None, n) for i, h in enumerate(headers) if h})
        for n, r in rows[1:]
    ]
    return RawSection([h for h in headers if h], {h: hrow for h in headers if h}, records)


def _keyvalue(rows: list[tuple[int, list[Any]]], label_col: str | None, value_col: str | None) -> RawSection:
    """Two-column label/value sheet -> one record whose 'columns' are the labels."""
    rows = [(n, r) for n, r in rows if any(not _blank(v) for v in r)]
    if not rows:
        return RawSection([], {}, [])
    header = [norm(h) if not _blank(h) else "" for h in rows[0][1]]
    li = header.index(norm(label_col)) if label_col and norm(label_col) in header else None
    vi = header.index(norm(value_col)) if value_col and norm(value_col) in header else None
    if li is None or vi is None:
        return RawSection([], {}, [])
    cells: dict[str, tuple[Any, int]] = {}
    headers: list[str] = []
    for n, r in rows[1:]:
        label = r[li] if li < len(r) else None
        if _blank(label):
            continue
        label = str(label)
        headers.append(label)
        cells[label] = (r[vi] if vi < len(r) else None, n)
    rec = [RawRecord(min(c[1] for c in cells.values()), cells)] if cells else []
    return RawSection(headers, {h: cells[h][1] for h in headers}, rec)


def _sniff_layout(data: bytes, filename: str) -> str:
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
            _over(pr, "xlsx_too_large", "workbook zip has more members than the configured limit",
                  expected=f"<= {limits.zip_members} members",
                  found=known(f"{members} members ({directory} bytes of directory)"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    if len(infos) > limits.zip_members:
        _over(pr, "xlsx_too_large", "workbook zip has more members than the configured limit",
              expected=f"<= {limits.zip_members} members", found=known(f"{len(infos)} members"))
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > limits.compression_ratio:
            _over(pr, "compression_bomb", "a workbook zip member expands beyond the configured compression ratio",
                  expected=f"<= {limits.compression_ratio:g}x its compressed size",
                  found=known(f"{info.file_size} bytes from {info.compress_size} ({ratio:.0f}x)"))
    total = sum(info.file_size for info in infos)
    if total > limits.decompressed_bytes:
        _over(pr, "xlsx_too_large", "workbook expands beyond the configured uncompressed size",
              expected=f"<= {limits.decompressed_bytes} bytes uncompressed",
              found=known(f"{total} bytes uncompressed"))


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
            _over(pr, "too_many_rows", "sheet has more rows than the configured limit", row=i, column="-",
                  expected=f"<= {limits.rows} data rows", found=known(f"a value in row {i}"))
        cells += n
        if cells > limits.cells:
            _over(pr, "too_many_cells", "workbook has more cells (rows x columns) than the configured limit",
                  row=i, column="-", expected=f"<= {limits.cells} cells", found=known(f"> {limits.cells} cells"))
        rows.append((i, list(r[:n])))
    return rows, cells


def _read_workbook(
    data: bytes, pr: Problems, limits: Limits | None = None
) -> dict[str, list[tuple[int, list[Any]]]]:
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


def _sniff_delimiter(line: str) -> str:
    counts = {d: 0 for d in (",", ";", "\t", "|")}
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(
    text: str, delimiter: str, pr: Problems | None = None, limits: Limits | None = None
) -> list[tuple[int, list[Any]]]:
    """CSV records numbered from 1 (the header), blank lines left out; malformed CSV or a record beyond the
    limits (rows, cells, bytes per field) is a file error (when scoring, without ``pr``: the rows so far)."""
    limits = limits or Limits.of()
    reader = csv.reader(_csv_lines(text), delimiter=delimiter)
    rows: list[tuple[int, list[Any]]] = []
    count = cells = 0
    try:
        for count, row in enumerate(reader, start=1):
            if count > limits.rows + 1:  # header + rows
                _over(pr, "too_many_rows", "CSV has more rows than the configured limit", row=count, column="-",
                      expected=f"<= {limits.rows} data rows", found=known(f"> {limits.rows} data rows"))
            if not row:
                continue
            cells += len(row)
            if cells > limits.cells:
                _over(pr, "too_many_cells", "CSV has more cells (rows x columns) than the configured limit",
                      row=count, column="-", expected=f"<= {limits.cells} cells",
                      found=known(f"> {limits.cells} cells"))
            if max(map(len, row)) * 4 > limits.field_bytes:  # UTF-8: at most 4 bytes a character
                _check_fields(row, count, rows[0][1] if rows else [], pr, limits)
            rows.append((count, row))
    except FileRejected:
        if pr is None:
            return rows
        raise
    except csv.Error as exc:
        if pr is None:
            return rows
        if "field larger than field limit" in str(exc):  # the csv module's own cap (131072 characters)
            _over(pr, "field_too_large", "a CSV field is larger than the configured limit", row=count + 1,
                  column="-", expected=f"<= {limits.field_bytes} bytes a field",
                  found=known(f"> {csv.field_size_limit()} characters"))
        pr.error(
            "invalid_csv",
            f"malformed CSV ({exc})",
            row=count + 1,
            column="-",
            expected="well-formed CSV",
            found=known(str(exc)),
        )
        raise FileRejected from exc
    return rows


def _csv_lines(text: str, block: int = 1 << 20) -> Iterator[str]:
    """The lines ``io.StringIO(text, newline="")`` yields, a block at a time: StringIO holds 4 bytes a character,
    so the whole text at once costs four times its length. Blocks end just after a ``\n`` (always a line end)."""
    start, n = 0, len(text)
    while start < n:
        end = n
        if start + block < n:
            cut = text.rfind("\n", start, start + block)
            if cut == -1:  # a line longer than the block: up to its end
                cut = text.find("\n", start + block)
            end = n if cut == -1 else cut + 1
        yield from io.StringIO(text[start:end], newline="")
        start = end


def _check_fields(row: list[str], n: int, header: list[str], pr: Problems | None, limits: Limits) -> None:
    for j, value in enumerate(row):
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limits.field_bytes:
            column = header[j] if j < len(header) and header[j].strip() else f"#{j + 1}"
            _over(pr, "field_too_large", "a CSV field is larger than the configured limit", row=n, column=column,
                  expected=f"<= {limits.field_bytes} bytes a field", found=known(f"{size} bytes"))


def _json_depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion; stops past ``limit``."""
    deepest, stack = 0, [(obj, 1)] if isinstance(obj, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            break
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def _json_records(data: bytes, cb: Codebook, pr: Problems, limits: Limits | None = None) -> RawSection:
    limits = limits or Limits.of()
    try:
        obj = orjson.loads(data.decode("utf-8-sig"))  # orjson: no recursion; refuses depth > 1024 itself
    except UnicodeDecodeError as exc:
        pr.error(
            "encoding",
            f"JSON is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            row=data[: exc.start].count(b"\n") + 1,
            expected="utf-8",
            found=known(f"0x{data[exc.start]:02x}"),
        )
        raise FileRejected from exc
    except json.JSONDecodeError as exc:  # orjson.JSONDecodeError is one
        if "depth" in exc.msg or "recursion" in exc.msg:
            _over(pr, "json_too_deep", "JSON nests deeper than the configured limit", row=exc.lineno,
                  column=f"char {exc.colno}", expected=f"<= {limits.json_depth} levels",
                  found=known(f"> {limits.json_depth} levels"))
        pr.error(
            "invalid_json",
            f"invalid JSON: {exc.msg}",
            row=exc.lineno,
            column=f"char {exc.colno}",
            expected="a JSON list of records or an object with a record list",
            found=known(exc.msg),
        )
        raise FileRejected from exc
    depth = _json_depth(obj, limits.json_depth)
    if depth > limits.json_depth:
        _over(pr, "json_too_deep", "JSON nests deeper than the configured limit", row=1, column="-",
              expected=f"<= {limits.json_depth} levels", found=known(f"> {limits.json_depth} levels"))
    records = obj.get(cb.records or "results") if isinstance(obj, dict) else obj
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        pr.error(
            "invalid_json",
            "JSON holds no list of records",
            row=1,
            expected=f"a list of objects (or key {cb.records or 'results'!r})",
            found=known(type(records).__name__),
        )
        raise FileRejected
    if len(records) > limits.rows:
        _over(pr, "too_many_rows", "JSON has more records than the configured limit", row=1, column="-",
              expected=f"<= {limits.rows} records", found=known(f"{len(records)} records"))
    headers: dict[str, None] = {}
    out = []
    cells = 0
    for i, rec in enumerate(records, start=1):
        flat = _flatten(rec)
        cells += len(flat)
        if cells > limits.cells:
            _over(pr, "too_many_cells", "JSON has more cells (records x fields) than the configured limit",
                  row=i, column="-", expected=f"<= {limits.cells} cells", found=known(f"> {limits.cells} cells"))
        headers.update(dict.fromkeys(flat))
        out.append(
            RawRecord(
                i, {k: (" ".join(map(str, v)) if isinstance(v, list) else v, i) for k, v in flat.items()}
            )
        )
    return RawSection(list(headers), dict.fromkeys(headers, 1), out)


# --------------------------------------------------------------------------------------------- context
@dataclass
class Ctx:
    file: str
    cluster: str
    instrument: str
    catalogue: Catalogue
    contract: Contract
    cb: Codebook
    key: bytes
    pr: Problems
    _allowed: dict[str, set[str]] = field(default_factory=dict)
    _labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def allowed(self, list_name: str) -> set[str]:
        if list_name not in self._allowed:
            self._allowed[list_name] = allowed_codes(list_name, self.cluster, self.catalogue)
        return self._allowed[list_name]

    def allowed_by_norm(self, list_name: str) -> dict[str, str]:
        key = f"norm:{list_name}"
        if key not in self._labels:
            self._labels[key] = {norm(a): a for a in self.allowed(list_name)}
        return self._labels[key]

    def labels(self, kind: str) -> dict[str, Any]:
        if kind not in self._labels:
            self._labels[kind] = self.cb.label_map(kind)
        return self._labels[kind]


def _decode_csv(data: bytes, cb: Codebook, pr: Problems) -> str:
    enc = cb.encoding.lower()
    if enc == "auto":  # sniffed: UTF-8 (with or without BOM), else Windows-1252
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            enc = "cp1252"
    codec = "utf-8-sig" if enc in ("utf-8", "utf8", "utf-8-sig") else enc
    if enc in SINGLE_BYTE_ENCODINGS and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            first = next(i for i, b in enumerate(data) if b > 127)
            pr.error(
                "encoding",
                f"codebook {cb.id} declares {cb.encoding} but the file is UTF-8",
                row=data[:first].count(b"\n") + 1,
                column=_column_at(data, first, cb),
                expected=cb.encoding,
                found=known("utf-8"),
            )
            raise FileRejected
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        hint = ""
        if codec == "utf-8-sig":
            hint = " (looks like Windows-1252: declare `encoding: cp1252` in a codebook)"
        pr.error(
            "encoding",
            f"cannot decode as {cb.encoding}: byte 0x{data[exc.start]:02x} at offset {exc.start}{hint}",
            row=data[: exc.start].count(b"\n") + 1,
            column=_column_at(data, exc.start, cb),
            expected=cb.encoding,
            found=known(f"byte 0x{data[exc.start]:02x}"),
        )
        raise FileRejected from exc


def _column_at(data: bytes, offset: int, cb: Codebook) -> str | None:
    """Header of the CSV column holding byte ``offset`` (approximate: ignores quoted delimiters)."""
    text = data.decode("latin-1")
    first_line = text.lstrip("\ufeffï»¿").splitlines()[0] if text else ""
    delim = _sniff_delimiter(first_line)
    headers = next(csv.reader([first_line], delimiter=delim), [])
    start = text.rfind("\n", 0, offset) + 1
    idx = text[start:offset].count(delim)
    return headers[idx].lstrip("\ufeffï»¿") if idx < len(headers) else f"#{idx + 1}"


def _read_sections(
    data: bytes,
    cb: Codebook,
    pr: Problems,
    sheets: dict[str, list[tuple[int, list[Any]]]] | None,
    limits: Limits | None = None,
) -> dict[str, RawSection]:
    """Raw sections of the file as this codebook would read it."""
    if cb.layout == "xlsx":
        assert sheets is not None
        by_norm = {norm(name): rows for name, rows in sheets.items()}
        out = {}
        for name, s in cb.sections.items():
            rows = by_norm.get(norm(s.sheet)) if s.sheet else None
            if rows is None and len(cb.sections) == 1:
                rows = next(iter(sheets.values()), None)  # single-sheet layouts: sheet names vary by export
            if rows is None:
                continue
            out[name] = _keyvalue(rows, s.label_column, s.value_column) if s.label_column else _table(rows)
        return out
    if cb.layout == "json":
        return {next(iter(cb.sections)): _json_records(data, cb, pr, limits)}
    text = _decode_csv(data, cb, pr)
    delim = _sniff_delimiter(_first_line(text))
    rows = _csv_rows(text, delim, pr, limits)
    if cb.layout == "csv":
        return {next(iter(cb.sections)): _table(rows)}
    return _long_sections(rows, cb, pr)


def _long_sections(rows: list[tuple[int, list[Any]]], cb: Codebook, pr: Problems) -> dict[str, RawSection]:
    """Long CSV ``section,item,field,value`` -> one raw section per contract section."""
    table = _table(rows)
    idx = {norm(h): h for h in table.headers}
    cols = {k: idx.get(norm(v)) for k, v in cb.long_columns.items()}
    if any(cols[k] is None for k in ("section", "field", "value")):
        return {}
    by_label = {norm(s.label or s.name): s for s in cb.sections.values()}
    out: dict[str, RawSection] = {}
    items: dict[tuple[str, str], RawRecord] = {}
    for rec in table.records:
        label = rec.cells[cols["section"]][0]
        s = by_label.get(norm(label or ""))
        if s is None:
            pr.warning(
                "unknown_section",
                "rows of an unknown section are ignored",
                row=rec.row,
                column=cols["section"],
                expected=", ".join(sorted(by_label)),
                found=label,
            )
            continue
        fld = str(rec.cells[cols["field"]][0] or "")
        value = rec.cells[cols["value"]][0]
        item = str(rec.cells[cols["item"]][0] or "") if cols.get("item") else ""
        sec = out.setdefault(s.name, RawSection([], {}, []))
        key = (s.name, "" if s.label_column or not item else item)
        r = items.get(key)
        if r is None:
            r = items[key] = RawRecord(rec.row, {})
            sec.records.append(r)
        if fld not in sec.header_rows:
            sec.headers.append(fld)
            sec.header_rows[fld] = rec.row
        r.cells[fld] = (value, rec.row)
    return out


# --------------------------------------------------------------------------------------------- values
def _is_missing(value: Any, ctx: Ctx) -> bool:
    return _blank(value) or (isinstance(value, str) and norm(value) in ctx.cb.missing_labels)


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    s = str(value).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("€", "")
    s = s.rstrip("%")
    if "," in s and "." in s:
        s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else s.replace(",", "")
    elif s.count(",") == 1:
        s = s.replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        return None
    return float(s)


def _convert(value: Any, f: FieldSpec, ctx: Ctx, row: int, column: str) -> Any:
    """One cell -> canonical value (None when missing or invalid; invalid cells add an error)."""
    if _is_missing(value, ctx):
        return None
    pr = ctx.pr
    t = f.type
    if t in ("string", "text"):
        return _fits_text(_as_text(value), f, ctx, row, column)
    if t == "boolean":
        if isinstance(value, bool):
            return value
        got = ctx.labels("boolean").get(norm(value))
        if got is None:
            got = {
                "true": True,
                "false": False,
                "yes": True,
                "no": False,
                "y": True,
                "n": False,
                "1": True,
                "0": False,
            }.get(norm(_as_text(value)))
        if got is None:
            pr.error(
                "invalid_value",
                f"not a yes/no answer for {f.name}",
                row=row,
                column=column,
                expected=" / ".join(ctx.cb.labels.get("boolean", {})) or "yes/no",
                found=value,
            )
        return got
    if t == "likert":
        for kind in (f"likert_{f.name}", "likert"):
            got = ctx.labels(kind).get(norm(value))
            if got is not None:
                return int(got)
        num = _number(value)
        if num is None or not num.is_integer():
            labels = list(ctx.cb.labels.get(f"likert_{f.name}", {})) or list(ctx.cb.labels.get("likert", {}))
            pr.error(
                "invalid_value",
                f"unknown answer label for {f.name}",
                row=row,
                column=column,
                expected=f"{LIKERT_MIN}-{LIKERT_MAX} or one of {labels[:5]}",
                found=value,
            )
            return None
        if not LIKERT_MIN <= num <= LIKERT_MAX:
            pr.error(
                "likert_out_of_range",
                f"{f.name} outside the {LIKERT_MIN}-{LIKERT_MAX} scale "
                '("not used / don\'t know" must be empty, never 0)',
                row=row,
                column=column,
                expected=f"{LIKERT_MIN}-{LIKERT_MAX} or empty",
                found=value,
            )
            return None
        return int(num)
    if t in ("integer", "decimal"):
        num = _number(value)
        if num is None or (t == "integer" and not num.is_integer()):
            pr.error(
                "invalid_value",
                f"{f.name} is not {'an integer' if t == 'integer' else 'a number'}",
                row=row,
                column=column,
                expected=t,
                found=value,
            )
            return None
        if (f.min is not None and num < f.min) or (f.max is not None and num > f.max):
            pr.error(
                "value_out_of_range",
                f"{f.name} out of range",
                row=row,
                column=column,
                expected=f"{f.min if f.min is not None else '-inf'}..{f.max if f.max is not None else 'inf'}",
                found=value,
            )
            return None
        low, high = INTEGER_RANGE if t == "integer" else (-DECIMAL_LIMIT, DECIMAL_LIMIT)
        if not (math.isfinite(num) and low <= num <= high):
            pr.error(
                "value_out_of_range",
                f"{f.name} is beyond what the warehouse column holds ({'integer' if t == 'integer' else 'numeric'})",
                row=row,
                column=column,
                expected=f"{low:.0f}..{high:.0f}",
                found=value,
            )
            return None
        return int(num) if t == "integer" else num
    if t == "date":
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        m = re.match(r"^\s*(\d{4}-\d{2}-\d{2})", str(value))
        if m and not _valid_date(m[1]):
            m = None
        if not m:
            pr.error(
                "invalid_value",
                f"{f.name} is not a date",
                row=row,
                column=column,
                expected="YYYY-MM-DD",
                found=value,
            )
            return None
        return m[1]
    if t == "code":
        return _code(value, f, ctx, row, column)
    raise ValueError(f"field {f.name}: type {t} needs a list cell")  # multi_code is handled by _multi


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _fits_text(text: str, f: FieldSpec, ctx: Ctx, row: int, column: str) -> str | None:
    """Text the warehouse accepts: no NUL / control characters / lone surrogates, at most TEXT_MAX_CHARS."""
    bad = _CONTROL.search(text)
    if bad:
        ctx.pr.error("invalid_character", f"{f.name} holds a control character (U+{ord(bad.group()):04X})",
                     row=row, column=column, expected="printable text (tab and line breaks allowed)",
                     found=known(f"U+{ord(bad.group()):04X} at character {bad.start() + 1}"))
        return None
    limit = TEXT_MAX_CHARS[f.type]
    if len(text) > limit:
        ctx.pr.error("text_too_long", f"{f.name} is longer than {limit} characters", row=row, column=column,
                     expected=f"<= {limit} characters", found=known(f"{len(text)} characters"))
        return None
    return text


def _valid_date(iso: str) -> bool:
    try:
        dt.date.fromisoformat(iso)
    except ValueError:
        return False
    return True


def _code(value: Any, f: FieldSpec, ctx: Ctx, row: int, column: str) -> str | None:
    lists = f.codes
    token = _as_text(value).strip()
    for lst in lists:
        got = ctx.labels(lst).get(norm(token))
        if got is not None:
            token = str(got)
            break
    for lst in lists:
        allowed = ctx.allowed(lst)
        cand = token
        if lst == "nuts3":
            m = re.match(r"^([A-Za-z]{2}[0-9A-Za-z]{1,3})\b", token)
            cand = m[1].upper() if m else token
        elif lst == "nace":
            if isinstance(value, float):
                token = f"{value:.2f}"
            m = re.match(r"^(\d{2})\.?(\d{1,2})(?!\d)", token)
            cand = f"{m[1]}.{m[2].ljust(2, '0')}" if m else token
        else:
            cand = ctx.allowed_by_norm(lst).get(norm(cand), cand)
        if cand in allowed:
            return cand
    lst = lists[0] if len(lists) == 1 else "codes"
    code = UNKNOWN_CODE_PROBLEM.get(lst, "unknown_code")
    if lst == "nuts3":
        regions = ", ".join(ctx.catalogue.cluster(ctx.cluster).regions)
        expected = f"a NUTS-3 code in {regions} (reference/nuts3.csv)"
    elif lst == "nace":
        expected = "a NACE Rev.2 4-digit code like 93.11 (reference/nace_rev2.csv)"
    else:
        known = sorted(ctx.cb.label_map(lst)) if len(lists) == 1 else []
        expected = f"a code of {'/'.join(lists)}" + (f" or a label like {known[:3]}" if known else "")
    ctx.pr.error(
        code,
        f"unknown {'/'.join(lists)} code in {f.name}",
        row=row,
        column=column,
        expected=expected,
        found=value,
    )
    return None


def _multi(value: Any, f: FieldSpec, ctx: Ctx, row: int, column: str, sep: str) -> list[str] | None:
    if _is_missing(value, ctx):
        return None
    text = _as_text(value)
    parts = text.split() if sep.strip() == "" else [p for p in text.split(sep)]
    out: list[str] = []
    for part in parts:
        if not part.strip():
            continue
        code = _code(part.strip(), f, ctx, row, column)
        if code is not None and code not in out:
            out.append(code)
    return out


def _flag(value: Any, ctx: Ctx, row: int, column: str) -> bool:
    """A multiple-choice option column (LimeSurvey Y / empty)."""
    if _blank(value):
        return False
    got = _convert(value, FieldSpec("option", "boolean"), ctx, row, column)
    return bool(got)


def _formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


# --------------------------------------------------------------------------------------------- sections
def _section_records(spec: SectionSpec, cbs: CodebookSection, raw: RawSection, ctx: Ctx) -> list[dict]:
    pr = ctx.pr
    mapping: dict[str, Target] = {}
    seen: dict[tuple[str, str | None], str] = {}
    for h in raw.headers:
        t = cbs.columns.get(norm(h))
        if t is None or t.field not in spec.fields:
            if not ctx.cb.ignored(h):
                pr.warning(
                    "unknown_column",
                    f"column not in codebook {ctx.cb.id}; ignored",
                    row=raw.header_rows.get(h),
                    column=h,
                    expected=f"a column of {ctx.cb.id}",
                    found=known(h),
                )
            continue
        if (t.field, t.code) in seen:
            pr.error(
                "duplicate_column",
                f"two columns map to {t.field}",
                row=raw.header_rows.get(h),
                column=h,
                expected="one column per field",
                found=known(f"{seen[(t.field, t.code)]!r} and {h!r}"),
            )
            continue
        seen[(t.field, t.code)] = h
        mapping[h] = t
    covered = {t.field for t in mapping.values()}
    header_of = {t.field: h for h, t in mapping.items()}
    expected_header = {t.field: cbs.headers[n] for n, t in cbs.columns.items()}
    head_row = min(raw.header_rows.values(), default=1)
    for f in spec.fields.values():
        if f.required and f.name not in covered:
            what = "row label" if spec.kind == "keyvalue" else "column"
            pr.error(
                "missing_required_column",
                f"required {what} for {spec.name}.{f.name} is missing",
                row=head_row,
                column=expected_header.get(f.name, f.name),
                expected=expected_header.get(f.name, f.name),
                found=known("absent"),
            )
    records = []
    for rec in raw.records:
        out: dict[str, Any] = {"source_row": rec.row, "formula_like": False}
        for h, t in mapping.items():
            f = spec.fields[t.field]
            if f.personal == "drop":
                continue
            value, row = rec.cells.get(h, (None, rec.row))
            if t.code is not None:
                if f.type == "multi_code":
                    lst = out.setdefault(f.name, [])
                    if _flag(value, ctx, row, h) and t.code not in lst:
                        lst.append(t.code)
                else:
                    out.setdefault(f.name, {})[t.code] = _convert(value, f, ctx, row, h)
                continue
            if t.derive == "year":
                m = re.match(r"^\s*(\d{4})", _as_text(value)) if not _blank(value) else None
                if value is not None and not _blank(value) and not m:
                    pr.error(
                        "invalid_value",
                        f"cannot read a year for {f.name}",
                        row=row,
                        column=h,
                        expected="a date like 2025-03-14",
                        found=value,
                    )
                out[f.name] = int(m[1]) if m else None
                continue
            if f.type == "multi_code":
                out[f.name] = _multi(value, f, ctx, row, h, cbs.multi_separator)
                if f.max_items and out[f.name] and len(out[f.name]) > f.max_items:
                    pr.error(
                        "too_many_items",
                        f"{f.name} allows at most {f.max_items} choices",
                        row=row,
                        column=h,
                        expected=f"<= {f.max_items} items",
                        found=len(out[f.name]),
                    )
                continue
            if f.type in ("text", "string") and _formula_like(value) and f.personal is None:
                out["formula_like"] = True
                pr.warning(
                    "formula_like",
                    "cell starts like a spreadsheet formula; stored verbatim as text",
                    row=row,
                    column=h,
                    expected="plain text",
                    found=known(f"text of {len(value)} characters starting with {value[:1]!r}"),
                )
            v = _convert(value, f, ctx, row, h)
            if isinstance(v, str) and f.personal is None and f.type in ("text", "string"):
                v = scrub(v)
            out[f.name] = v
        for f in spec.fields.values():
            if f.required and f.name in covered and out.get(f.name) in (None, [], {}):
                h = header_of[f.name]
                value, row = rec.cells.get(h, (None, rec.row))
                if _blank(value):
                    pr.error(
                        "missing_value",
                        f"required {spec.name}.{f.name} is empty",
                        row=row,
                        column=h,
                        expected="a value",
                        found="",
                    )
        out["_headers"] = header_of
        records.append(out)
    return records


def _pseudonymise(spec: SectionSpec, records: list[dict], ctx: Ctx) -> None:
    for name in spec.key:
        f = spec.fields[name]
        if f.personal != "pseudonymise":
            continue
        pid_col = name.removesuffix("_id") + "_pid"
        first: dict[str, int] = {}
        for r in records:
            raw_id = r.pop(name, None)
            if raw_id is None:
                r[pid_col] = None
                continue
            pid = pseudonymise(f"{ctx.cluster}|{ctx.instrument}|{raw_id}", ctx.key)
            r[pid_col] = pid
            if pid in first:
                ctx.pr.error(
                    "duplicate_respondent",
                    "respondent appears twice in the file",
                    row=r["source_row"],
                    column=r["_headers"].get(name),
                    expected=f"unique (first in row {first[pid]})",
                    found=known(f"pseudonym {pid[:12]}"),
                )
            else:
                first[pid] = r["source_row"]


def _wave(contract: Contract, recs: dict[str, list[dict]], ctx: Ctx) -> int | None:
    waves: list[tuple[int, int, str]] = []
    for sname, spec in contract.sections.items():
        for f in spec.fields.values():
            if f.name == "wave" or f.wave:
                waves += [
                    (r[f.name], r["source_row"], r["_headers"].get(f.name, f.name))
                    for r in recs.get(sname, [])
                    if r.get(f.name) is not None
                ]
    if not waves:
        return None
    first = waves[0][0]
    for w, row, col in waves:
        if w != first:
            ctx.pr.error(
                "mixed_waves",
                "one file must hold one wave",
                row=row,
                column=col,
                expected=str(first),
                found=w,
            )
            break
    return first


def _check_cluster(recs: dict[str, list[dict]], ctx: Ctx) -> None:
    for rows in recs.values():
        for r in rows:
            c = r.get("cluster")
            if c is not None and c != ctx.cluster:
                ctx.pr.error(
                    "cluster_mismatch",
                    "row belongs to another cluster than the inbox folder",
                    row=r["source_row"],
                    column=r["_headers"].get("cluster"),
                    expected=ctx.cluster,
                    found=known(c),  # a cluster code of the code list (validated by _code)
                )


# --------------------------------------------------------------------------------------------- tables
def _dtype(column: str, spec: SectionSpec) -> str:
    if column in EXTRA_DTYPES:
        return EXTRA_DTYPES[column]
    f = spec.fields.get(column)
    return DTYPES[f.type] if f else "string"


def table_columns(contract: Contract, table: str) -> list[str]:
    """Column names of a canonical raw table (= Postgres columns minus ``batch_id``)."""
    return PREFIX_COLUMNS + list(contract.tables[table]["columns"])


def _build_tables(
    contract: Contract, recs: dict[str, list[dict]], ctx: Ctx, sha: str, wave: int | None
) -> dict[str, pd.DataFrame]:
    out = {}
    for name, t in contract.tables.items():
        spec = contract.sections[t["from"]]
        cols = list(t["columns"])
        rows: list[dict] = []
        for r in recs.get(t["from"], []):
            if t["shape"] == "row":
                rows.append({c: r.get(c) for c in cols})
            elif t["shape"] == "per_code":
                for code in contract.code_lists[t["codes"]]:
                    row = {}
                    for c in cols:
                        f = spec.fields.get(c)
                        if c == t["code_column"]:
                            row[c] = code
                        elif f is not None and f.type == "multi_code":
                            row[c] = None if r.get(c) is None else code in r[c]
                        elif f is not None and f.per:
                            row[c] = (r.get(c) or {}).get(code)
                        else:
                            row[c] = r.get(c)
                    rows.append(row)
            elif t["shape"] == "explode":
                for fld, direction in t["fields"].items():
                    for code in r.get(fld) or []:
                        row = {c: r.get(c) for c in cols}
                        row[t["code_column"]] = code
                        if t.get("direction_column"):
                            row[t["direction_column"]] = direction
                        rows.append(row)
            else:
                raise ValueError(f"table {name}: unknown shape {t['shape']}")
        df = pd.DataFrame(rows, columns=cols)
        df.insert(0, "wave", wave)
        df.insert(0, "cluster", ctx.cluster)
        df.insert(0, "file_sha256", sha)
        out[name] = df.astype({c: _dtype(c, spec) for c in df.columns})
    return out


# --------------------------------------------------------------------------------------------- entry
def _run(
    data: bytes, cb: Codebook, base: Ctx, sheets: dict | None, sha: str
) -> tuple[Ctx, dict, int | None, bool]:
    """Full pipeline with one codebook; returns its context (problems), tables, wave, and whether rejected."""
    ctx = Ctx(
        base.file,
        base.cluster,
        base.instrument,
        base.catalogue,
        base.contract,
        cb,
        base.key,
        Problems(base.file),
    )
    try:
        if cb.family == "csv":
            text_head = data[:HEAD_CHARS].decode("latin-1").lstrip("\ufeffï»¿")
            first_line = _first_line(text_head)
            sniffed = _sniff_delimiter(first_line)
            if sniffed != cb.delimiter:
                n = len(next(csv.reader([first_line], delimiter=cb.delimiter), []))
                ctx.pr.error(
                    "wrong_delimiter",
                    f"header parsed with {cb.delimiter!r} (codebook {cb.id}) gives {n} "
                    f"column{'s' if n != 1 else ''}; the file looks {sniffed!r}-delimited",
                    row=1,
                    column=first_line[:40],
                    expected=f"delimiter {cb.delimiter!r}",
                    found=known(sniffed),
                )
                raise FileRejected
        sections = _read_sections(data, cb, ctx.pr, sheets, Limits.of(base.catalogue))
        if all(not s.records for s in sections.values()):
            ctx.pr.error(
                "header_only",
                "file has a header but no data rows",
                row=2,
                column="-",
                expected="at least one data row",
                found=known("no rows"),
            )
            raise FileRejected
        recs: dict[str, list[dict]] = {}
        for sname, spec in ctx.contract.sections.items():
            raw = sections.get(sname)
            cbs = cb.sections.get(sname)
            if raw is None or cbs is None:
                if not spec.optional:
                    where = cbs.sheet or cbs.label if cbs else sname
                    ctx.pr.error(
                        "missing_section",
                        f"section {sname} is missing",
                        row=None,
                        column=where,
                        expected=f"sheet/section {where!r}",
                        found=known("absent"),
                    )
                continue
            recs[sname] = _section_records(spec, cbs, raw, ctx)
            _pseudonymise(spec, recs[sname], ctx)
        _check_cluster(recs, ctx)
        wave = _wave(ctx.contract, recs, ctx)
        tables = _build_tables(ctx.contract, recs, ctx, sha, wave)
        return ctx, tables, wave, False
    except FileRejected:
        return ctx, {}, None, True


def _header_score(sections: dict[str, RawSection], cb: Codebook, contract: Contract) -> tuple[float, float]:
    req = hit = known = total = 0
    for sname, spec in contract.sections.items():
        raw, cbs = sections.get(sname), cb.sections.get(sname)
        fields = set()
        if raw and cbs:
            for h in raw.headers:
                total += 1
                t = cbs.columns.get(norm(h))
                if t is not None:
                    known += 1
                    fields.add(t.field)
                elif cb.ignored(h):
                    total -= 1
        if not spec.optional:
            for f in spec.fields.values():
                if f.required:
                    req += 1
                    hit += f.name in fields
    return (hit / req if req else 0.0, known / total if total else 0.0)


def _quiet_sections(
    data: bytes, cb: Codebook, sheets: dict | None, limits: Limits | None = None
) -> dict[str, RawSection]:
    """Raw sections for scoring only (lenient decoding, sniffed delimiter, no problems kept)."""
    scratch = Problems("")
    if cb.family == "csv":
        enc = cb.encoding.lower()
        text = data.decode("utf-8-sig" if enc.startswith("utf") or enc == "auto" else enc, errors="replace")
        text = text.lstrip("\ufeff")
        rows = _csv_rows(text, _sniff_delimiter(_first_line(text)), None, limits)
        return (
            {next(iter(cb.sections)): _table(rows)}
            if cb.layout == "csv"
            else _long_sections(rows, cb, scratch)
        )
    try:
        return _read_sections(data, cb, scratch, sheets, limits)
    except FileRejected:
        return {}


def parse_file(
    data: bytes,
    filename: str,
    cluster: str,
    instrument: str,
    *,
    key: bytes,
    max_bytes: int | None = None,
    catalogue: Catalogue | None = None,
    codebooks: tuple[Codebook, ...] | None = None,
) -> ParseResult:
    """Parse one survey export (bytes as received) into canonical raw tables plus problems."""
    catalogue = catalogue or load_catalogue()
    sha = hashlib.sha256(data).hexdigest()
    pr = Problems(filename)
    result = ParseResult(filename, cluster, instrument, sha, problems=pr)

    instruments = catalogue.sources.get("surveys", {}).get("instruments", [])
    try:
        contract = load_contract(instrument)
    except KeyError:
        contract = None
    if contract is None or instrument not in instruments:
        pr.error(
            "unknown_instrument",
            "unknown survey instrument",
            expected=" / ".join(instruments),
            found=known(instrument),  # an inbox folder name
        )
        return result
    if cluster not in {c.id for c in catalogue.clusters}:
        pr.error(
            "unknown_cluster",
            "unknown cluster (not in catalogue.yml)",
            expected=" / ".join(c.id for c in catalogue.clusters),
            found=known(cluster),  # an inbox folder name
        )
        return result
    limit = max_bytes if max_bytes is not None else int(catalogue.sources["surveys"]["max_file_bytes"])
    if len(data) > limit:
        pr.error(
            "file_too_large",
            "file exceeds the configured size limit",
            expected=f"<= {limit} bytes",
            found=known(f"{len(data)} bytes"),
        )
        return result
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n"):
        pr.error(
            "empty_file",
            "file is empty",
            row=1,
            column="-",
            expected="a header and data rows",
            found=known(f"{len(data)} bytes"),
        )
        return result

    limits = Limits.of(catalogue)
    layout = _sniff_layout(data, filename)
    if layout == "ole":
        pr.error(
            "encrypted_xlsx",
            "file is an OLE compound document: a password-protected XLSX or a legacy "
            ".xls; save it unprotected as .xlsx",
            expected="XLSX (zip)",
            found=known("OLE/CFB (D0 CF 11 E0)"),
        )
        return result
    candidates = [
        cb for cb in (codebooks or load_codebooks()) if cb.instrument == instrument and cb.family == layout
    ]
    if not candidates:
        pr.error(
            "no_codebook",
            f"no codebook for {instrument} in layout {layout}",
            expected="a codebook",
            found=known(layout),
        )
        return result
    sheets = None
    if layout == "json":
        try:
            if not _json_records(data, candidates[0], pr, limits).records:
                pr.error(
                    "header_only",
                    "JSON holds no records",
                    row=1,
                    column="-",
                    expected="at least one record",
                    found=known("0 records"),
                )
        except FileRejected:
            pass
        if pr.has_errors:
            return result
    if layout == "xlsx":
        try:
            sheets = _read_workbook(data, pr, limits)
        except FileRejected:
            return result
        if not any(rows for rows in sheets.values()):
            pr.error(
                "empty_file",
                "workbook has no cells",
                row=1,
                column="-",
                expected="a header row",
                found=known("empty workbook"),
            )
            return result

    scored = [(_header_score(_quiet_sections(data, cb, sheets, limits), cb, contract), cb) for cb in candidates]
    best = max(s for s, _ in scored)
    if best[1] == 0.0:
        hint = ""
        if layout == "csv":
            first = data[:HEAD_CHARS].decode("latin-1").lstrip("\ufeffï»¿").splitlines()[0]
            hint = f"; header starts {scrub(first[:60])!r}"
        pr.error(
            "no_codebook",
            f"header matches no {instrument} codebook ({', '.join(c.id for c in candidates)}){hint}",
            row=1,
            column="-",
            expected="a known header layout (add a codebook)",
            found=known(f"{layout} file"),
        )
        return result
    tied = [cb for s, cb in scored if s == best]
    lang = catalogue.cluster(cluster).language
    base = Ctx(filename, cluster, instrument, catalogue, contract, tied[0], key, pr)
    runs = [_run(data, cb, base, sheets, sha) for cb in tied]
    ctx, tables, wave, _ = min(
        runs, key=lambda r: (r[3], sum(p.severity == "error" for p in r[0].pr), r[0].cb.language != lang)
    )
    pr.extend(ctx.pr)
    result.codebook = ctx.cb.id
    result.wave = wave
    result.tables = tables if not pr.has_errors else {}
    return result
