"""Eurostat bulk files (SDMX 2.1 TSV, gzipped or not) read in bounded pieces: the body is never held whole.

A bulk file can hold tens of millions of cells (a whole regional dataset). :func:`iter_frames` reads it from a file
object (the archived body), decompresses it ``block_bytes`` at a time within the configured bounds (total output
and compression ratio, as :func:`ingest.eurostat.envelope.gunzip`), cuts the text at line ends and decodes each
piece (the header line plus whole series lines) with the TSV decoder of :mod:`ingest.eurostat.decode_sdmx`: the
frames are those :func:`ingest.eurostat.decode.decode` gives for the whole body, cut between series. Memory is a
few times ``block_bytes`` whatever the file's size.

:func:`select` keeps the rows a catalogue entry asks for (its filters, geo codes and first period), so a bulk
dataset loads the same rows the Statistics API would answer for it.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO

import pandas as pd

from ingest.eurostat.decode_sdmx import decode_tsv
from ingest.eurostat.envelope import sniff
from ingest.eurostat.errors import EurostatPayloadError

BLOCK_BYTES = 256 << 10  # decompressed text per decoded piece (~40,000 cells of a typical regional table)
MAX_LINE_BYTES = 64 << 20  # one series line longer than this is not Eurostat's TSV
_RATIO_FLOOR = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class _Counting:
    """A read-only file object counting the (compressed) bytes read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def plain_blocks(
    fileobj: BinaryIO, dataset: str | None, *, max_bytes: int, max_ratio: float, block_bytes: int = BLOCK_BYTES
) -> Iterator[bytes]:
    """The body's text ``block_bytes`` at a time: gunzipped when it starts with the gzip magic, bounded to
    ``max_bytes`` of output and ``max_ratio`` times the compressed bytes read (``kind="too_large"``)."""
    head = fileobj.read(2)
    if head != _GZIP_MAGIC:
        yield head
        total = len(head)
        while block := fileobj.read(block_bytes):
            total += len(block)
            if total > max_bytes:
                raise EurostatPayloadError(dataset, f"body beyond {max_bytes} bytes", kind="too_large")
            yield block
        return
    counted = _Counting(fileobj)
    counted.count = 2
    total = 0
    try:
        with gzip.GzipFile(fileobj=_Prefixed(head, counted)) as stream:
            while block := stream.read(block_bytes):
                total += len(block)
                if total > max_bytes:
                    raise EurostatPayloadError(dataset, f"gzip body expands beyond {max_bytes} bytes", kind="too_large")
                if total > _RATIO_FLOOR and total > max_ratio * counted.count:
                    raise EurostatPayloadError(
                        dataset,
                        f"gzip body expands beyond {max_ratio:g} times its compressed size",
                        kind="too_large",
                    )
                yield block
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise EurostatPayloadError(dataset, f"truncated or corrupt gzip ({exc})", kind="truncated") from exc


class _Prefixed:
    """``prefix`` then the rest of ``raw`` (the two magic bytes already read to sniff the body)."""

    def __init__(self, prefix: bytes, raw: _Counting) -> None:
        self.prefix, self.raw = prefix, raw

    def read(self, size: int = -1) -> bytes:
        if not self.prefix:
            return self.raw.read(size)
        n = len(self.prefix) if size < 0 else min(size, len(self.prefix))
        out, self.prefix = self.prefix[:n], self.prefix[n:]
        return out


def iter_frames(
    fileobj: BinaryIO,
    dataset: str | None,
    *,
    max_bytes: int,
    max_ratio: float,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[pd.DataFrame]:
    """Decode an SDMX 2.1 TSV body piece by piece (see the module docstring); empty pieces are not yielded.

    Not TSV (an error page, JSON, XML), a header without periods or a line past ``MAX_LINE_BYTES``: one
    :class:`EurostatPayloadError` naming the dataset, before or while reading."""
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
        frame = decode_tsv(header + data[:cut], dataset)
        if len(frame):
            yield frame
    if header is None:
        if not rest.strip():
            raise EurostatPayloadError(dataset, "empty body", kind="empty")
        what = sniff(rest.lstrip())
        raise EurostatPayloadError(
            dataset, f"bulk file is not SDMX TSV (starts like {what}: {rest[:60]!r})", kind="unknown"
        )
    if rest.strip():
        frame = decode_tsv(header + rest + b"\n", dataset)
        if len(frame):
            yield frame


def _short_line(data: bytes, dataset: str | None) -> bytes:
    if len(data) > MAX_LINE_BYTES:
        raise EurostatPayloadError(dataset, f"a TSV line longer than {MAX_LINE_BYTES} bytes", kind="too_large")
    return data


def select(
    frame: pd.DataFrame,
    filters: Mapping[str, Sequence[str]],
    geo: Sequence[str],
    since: str | None,
    dataset: str | None = None,
) -> pd.DataFrame:
    """The rows of a decoded piece the catalogue entry asks for: each filter's codes, ``geo`` codes unless empty
    (every region), periods from ``since`` on. A filter on a dimension the file does not have is an error, as the
    Statistics API answers such a request."""
    keep = None
    for dim, codes in filters.items():
        name = dim.lower()
        if name not in frame.columns:
            raise EurostatPayloadError(dataset, f"the catalogue filters {dim}, a dimension the bulk file does not have")
        hit = frame[name].isin([str(c) for c in codes]).to_numpy()
        keep = hit if keep is None else keep & hit
    if geo and "geo" in frame.columns:
        hit = frame["geo"].isin(list(geo)).to_numpy()
        keep = hit if keep is None else keep & hit
    if since:
        hit = (frame["time"] >= str(since)).fillna(False).to_numpy(dtype=bool)
        keep = hit if keep is None else keep & hit
    if keep is None or keep.all():
        return frame
    return frame.loc[keep].reset_index(drop=True)
