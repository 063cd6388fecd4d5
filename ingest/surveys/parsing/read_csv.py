"""CSV reading (wide exports such as LimeSurvey, and the rows of long CSV): decoding, delimiter, bounded records."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from ingest.surveys.parsing.raw import HEAD_CHARS, FileRejected, Limits, first_line, over_limit
from ingest.surveys.privacy import known
from ingest.surveys.problems import Problems
from ingest.surveys.spec import Codebook

SINGLE_BYTE_ENCODINGS = {"cp1252", "windows-1252", "latin-1", "latin1", "iso-8859-1", "iso-8859-15"}


def sniff_delimiter(line: str) -> str:
    counts = {d: 0 for d in (",", ";", "\t", "|")}
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def check_delimiter(data: bytes, cb: Codebook, pr: Problems) -> None:
    """A file error when the header line looks delimited otherwise than the codebook declares."""
    text_head = data[:HEAD_CHARS].decode("latin-1").lstrip("\ufeffï»¿")
    line = first_line(text_head)
    sniffed = sniff_delimiter(line)
    if sniffed != cb.delimiter:
        n = len(next(csv.reader([line], delimiter=cb.delimiter), []))
        pr.error(
            "wrong_delimiter",
            f"header parsed with {cb.delimiter!r} (codebook {cb.id}) gives {n} "
            f"column{'s' if n != 1 else ''}; the file looks {sniffed!r}-delimited",
            row=1,
            column=line[:40],
            expected=f"delimiter {cb.delimiter!r}",
            found=known(sniffed),
        )
        raise FileRejected


def csv_rows(
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
                over_limit(
                    pr,
                    "too_many_rows",
                    "CSV has more rows than the configured limit",
                    row=count,
                    column="-",
                    expected=f"<= {limits.rows} data rows",
                    found=known(f"> {limits.rows} data rows"),
                )
            if not row:
                continue
            cells += len(row)
            if cells > limits.cells:
                over_limit(
                    pr,
                    "too_many_cells",
                    "CSV has more cells (rows x columns) than the configured limit",
                    row=count,
                    column="-",
                    expected=f"<= {limits.cells} cells",
                    found=known(f"> {limits.cells} cells"),
                )
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
            over_limit(
                pr,
                "field_too_large",
                "a CSV field is larger than the configured limit",
                row=count + 1,
                column="-",
                expected=f"<= {limits.field_bytes} bytes a field",
                found=known(f"> {csv.field_size_limit()} characters"),
            )
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
            over_limit(
                pr,
                "field_too_large",
                "a CSV field is larger than the configured limit",
                row=n,
                column=column,
                expected=f"<= {limits.field_bytes} bytes a field",
                found=known(f"{size} bytes"),
            )


def decode_csv(data: bytes, cb: Codebook, pr: Problems) -> str:
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
    header_line = text.lstrip("\ufeffï»¿").splitlines()[0] if text else ""
    delim = sniff_delimiter(header_line)
    headers = next(csv.reader([header_line], delimiter=delim), [])
    start = text.rfind("\n", 0, offset) + 1
    idx = text[start:offset].count(delim)
    return headers[idx].lstrip("\ufeffï»¿") if idx < len(headers) else f"#{idx + 1}"
