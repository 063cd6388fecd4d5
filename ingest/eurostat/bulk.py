"""Eurostat bulk files (SDMX 2.1 TSV, gzipped or not) read in bounded pieces: the body is never held whole.

A bulk file can hold tens of millions of cells (a whole regional dataset). :func:`iter_tables` reads it from a file
object (the archived body), decompresses it ``block_bytes`` at a time within the configured bounds
(:func:`ingest.eurostat.envelope.gunzip_blocks`: total output and compression ratio), cuts the text at line ends
and decodes each piece (the header line plus whole series lines) into an Arrow table
(:func:`ingest.eurostat.tsv.decode_tsv_table`); :func:`iter_frames` gives the same pieces as the pandas frames
:func:`ingest.eurostat.decode.decode` returns for the whole body, cut between series. Memory is a few times
``block_bytes`` whatever the file's size.

:func:`select` keeps the rows a catalogue entry asks for (its filters, geo codes and first period), so a bulk
dataset loads the same rows the Statistics API would answer for it.

No pandas here (Arrow and numpy only): the nightly's bulk path (``ingest.tasks.bulk``) stages tables straight into
the warehouse, and a process that only decodes does not pay pandas' import.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.eurostat.envelope import gunzip_blocks, sniff
from ingest.eurostat.errors import EurostatPayloadError
from ingest.eurostat.tsv import decode_tsv_table

if TYPE_CHECKING:
    import pandas as pd

BLOCK_BYTES = 256 << 10  # decompressed text per decoded piece (~40,000 cells of a typical regional table)
DECODERS = min(2, os.cpu_count() or 1)  # threads decoding pieces (more: more memory, no faster on 2 cores)
MAX_LINE_BYTES = 64 << 20  # one series line longer than this is not Eurostat's TSV
_GZIP_MAGIC = b"\x1f\x8b"


def plain_blocks(
    fileobj: BinaryIO, dataset: str | None, *, max_bytes: int, max_ratio: float, block_bytes: int = BLOCK_BYTES
) -> Iterator[bytes]:
    """The body's text ``block_bytes`` at a time: gunzipped when it starts with the gzip magic, bounded to
    ``max_bytes`` of output and ``max_ratio`` times the compressed bytes read (``kind="too_large"``)."""
    head = fileobj.read(2)
    if head == _GZIP_MAGIC:
        yield from gunzip_blocks(
            _Prefixed(head, fileobj), dataset, max_bytes=max_bytes, max_ratio=max_ratio, block_bytes=block_bytes
        )
        return
    yield head
    total = len(head)
    while block := fileobj.read(block_bytes):
        total += len(block)
        if total > max_bytes:
            raise EurostatPayloadError(dataset, f"body beyond {max_bytes} bytes", kind="too_large")
        yield block


class _Prefixed:
    """``prefix`` then the rest of ``raw`` (the two magic bytes already read to sniff the body)."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        self.prefix, self.raw = prefix, raw

    def read(self, size: int = -1) -> bytes:
        if not self.prefix:
            return self.raw.read(size)
        rest = self.raw.read(max(size - len(self.prefix), 1) if size >= 0 else -1)
        out, self.prefix = self.prefix + rest, b""
        return out


def iter_frames(
    fileobj: BinaryIO,
    dataset: str | None,
    *,
    max_bytes: int,
    max_ratio: float,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[pd.DataFrame]:
    """The pieces of :func:`iter_tables` as the pandas frames every decoder returns (``str`` columns, NaN values)."""
    from ingest.eurostat.frames import table_frame

    for table in iter_tables(fileobj, dataset, max_bytes=max_bytes, max_ratio=max_ratio, block_bytes=block_bytes):
        yield table_frame(table)


def iter_tables(
    fileobj: BinaryIO,
    dataset: str | None,
    *,
    max_bytes: int,
    max_ratio: float,
    block_bytes: int = BLOCK_BYTES,
    workers: int = DECODERS,
) -> Iterator[pa.Table]:
    """Decode an SDMX 2.1 TSV body piece by piece (see the module docstring), in order; empty pieces are not
    yielded. ``workers`` threads decode pieces while this one decompresses and cuts the next (Arrow's CSV reader,
    numpy and zlib let go of the GIL): at most ``workers + 1`` pieces are in flight, so memory stays bounded.

    Not TSV (an error page, JSON, XML), a header without periods or a line past ``MAX_LINE_BYTES``: one
    :class:`EurostatPayloadError` naming the dataset, before or while reading."""
    pieces = _text_pieces(fileobj, dataset, max_bytes=max_bytes, max_ratio=max_ratio, block_bytes=block_bytes)
    if workers <= 1:
        for body in pieces:
            table = decode_tsv_table(body, dataset)
            if table.num_rows:
                yield table
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="bulk-decode") as pool:
        running: deque[Future] = deque()
        try:
            for body in pieces:
                running.append(pool.submit(decode_tsv_table, body, dataset))
                if len(running) > workers:
                    table = running.popleft().result()
                    if table.num_rows:
                        yield table
            while running:
                table = running.popleft().result()
                if table.num_rows:
                    yield table
        finally:  # stopped early (an error, a reader that had enough): drop what has not started
            for future in running:
                future.cancel()


def _text_pieces(
    fileobj: BinaryIO, dataset: str | None, *, max_bytes: int, max_ratio: float, block_bytes: int
) -> Iterator[bytes]:
    """The body's text as pieces of about ``block_bytes``: the header line, then whole series lines."""
    header: bytes | None = None
    rest = b""
    for block in plain_blocks(fileobj, dataset, max_bytes=max_bytes, max_ratio=max_ratio, block_bytes=block_bytes):
        data = rest + block if rest else block
        if header is None:
            data = data.removeprefix(b"\xef\xbb\xbf").lstrip() if not rest else data
            end = data.find(b"\n")
            if end < 0:
                rest = _short_line(data, dataset)
                continue
            header, data = data[: end + 1], data[end + 1 :]
            if sniff(header) != "tsv":
                what = sniff(header)
                raise EurostatPayloadError(
                    dataset, f"bulk file is not SDMX TSV (starts like {what}: {header[:60]!r})", kind="unknown"
                )
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = _short_line(data, dataset)
            continue
        rest = data[cut:]
        yield header + data[:cut]
    if header is None:
        if not rest.strip():
            raise EurostatPayloadError(dataset, "empty body", kind="empty")
        what = sniff(rest.lstrip())
        raise EurostatPayloadError(
            dataset, f"bulk file is not SDMX TSV (starts like {what}: {rest[:60]!r})", kind="unknown"
        )
    if rest.strip():
        yield header + rest + b"\n"


def _short_line(data: bytes, dataset: str | None) -> bytes:
    if len(data) > MAX_LINE_BYTES:
        raise EurostatPayloadError(dataset, f"a TSV line longer than {MAX_LINE_BYTES} bytes", kind="too_large")
    return data


def select(
    table: pa.Table,
    filters: Mapping[str, Sequence[str]],
    geo: Sequence[str],
    since: str | None,
    dataset: str | None = None,
) -> pa.Table:
    """The rows of a decoded piece the catalogue entry asks for: each filter's codes, ``geo`` codes unless empty
    (every region), periods from ``since`` on. A filter on a dimension the file does not have is an error, as the
    Statistics API answers such a request. Each test runs on the column's distinct codes, then per row by code."""
    keep = None
    for dim, codes in filters.items():
        name = dim.lower()
        if name not in table.column_names:
            raise EurostatPayloadError(dataset, f"the catalogue filters {dim}, a dimension the bulk file does not have")
        keep = _and(
            keep, _rows_where(table.column(name), lambda d, c=codes: pc.is_in(d, pa.array([str(x) for x in c], d.type)))
        )
    if geo and "geo" in table.column_names:
        keep = _and(
            keep, _rows_where(table.column("geo"), lambda d: pc.is_in(d, pa.array([str(x) for x in geo], d.type)))
        )
    if since:
        keep = _and(
            keep, _rows_where(table.column("time"), lambda d: pc.greater_equal(d, pa.scalar(str(since), d.type)))
        )
    if keep is None or keep.all():
        return table
    return table.filter(pa.array(keep))


def _and(keep: np.ndarray | None, hit: np.ndarray) -> np.ndarray:
    return hit if keep is None else keep & hit


def _rows_where(column: pa.ChunkedArray, test) -> np.ndarray:
    """``test`` (Arrow compute on text) per row, as booleans; a null row is never kept. On a dictionary column the
    test runs once per distinct code."""
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(arr.type):
        by_code = np.append(test(arr.dictionary).fill_null(False).to_numpy(zero_copy_only=False), False)
        codes = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return by_code[codes]  # code -1 (null) indexes the trailing False
    return test(arr).fill_null(False).to_numpy(zero_copy_only=False)
