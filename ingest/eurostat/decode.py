"""Decode Eurostat bodies (JSON-stat 2.0, SDMX 2.1 TSV, SDMX-CSV; gzip or not) into one long table.

Output columns, in order: ``dataset``, one column per non-time dimension (lower-case id, DSD order), ``time``,
``value`` (float64, NaN when the cell only has a flag), ``obs_status``, ``conf_status``,
``source_updated_at`` (built in :mod:`ingest.eurostat.frames`).
String columns use pandas' ``str`` dtype (missing = NA). Rows are the cells that have a value or a flag, in
cube order (series-major, time fastest). Anything that is not data raises :class:`EurostatPayloadError`.

This module holds the entry point :func:`decode` (sniffs the format) and the JSON-stat decoder; the SDMX TSV and
SDMX-CSV decoders are in :mod:`ingest.eurostat.decode_sdmx` (the TSV one decodes with :mod:`ingest.eurostat.tsv`).
Both are re-exported here, as are :func:`normalise_period`, :func:`split_flag`, ``TAIL_COLUMNS`` and ``CONF_FLAGS``.

Everything is vectorised (numpy / pyarrow): the cube is never densified and no Python loop runs per cell.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

from ingest.eurostat.codes import TIME_IDS as _TIME_IDS
from ingest.eurostat.decode_sdmx import decode_sdmx_csv as decode_sdmx_csv
from ingest.eurostat.decode_sdmx import decode_tsv as decode_tsv
from ingest.eurostat.envelope import check_json_doc, not_data_xml, sniff, unwrap
from ingest.eurostat.errors import EurostatPayloadError, one_line
from ingest.eurostat.frames import CONF_FLAGS as CONF_FLAGS
from ingest.eurostat.frames import TAIL_COLUMNS as TAIL_COLUMNS
from ingest.eurostat.frames import _const, _flag_columns, _frame, _iso_updated, _take
from ingest.eurostat.frames import normalise_period as normalise_period
from ingest.eurostat.frames import split_flag as split_flag

_WORKERS = min(2, os.cpu_count() or 1)  # more threads: more allocator arenas, little speed-up


# --------------------------------------------------------------------------------------------- public
def decode(payload: bytes, dataset: str | None = None) -> pd.DataFrame:
    """Decode a Eurostat body into the long table; raise :class:`EurostatPayloadError` if it is not data."""
    body = unwrap(payload, dataset)
    kind = sniff(body)
    if kind == "json":
        doc = _cut_sparse_sections(body)
        if doc is None:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise EurostatPayloadError(dataset, f"truncated or invalid JSON ({exc})", kind="truncated") from exc
        return decode_jsonstat(check_json_doc(doc, dataset), dataset)
    if kind == "tsv":
        return decode_tsv(body, dataset)
    if kind == "sdmx-csv":
        return decode_sdmx_csv(body, dataset)
    if kind in ("html", "xml"):
        raise not_data_xml(body, dataset, kind)
    raise EurostatPayloadError(dataset, f"unrecognised body starting with {body[:40]!r}", kind="unknown")


# --------------------------------------------------------------------------------------------- helpers
def _int_keys(keys: list[str], dataset: str | None) -> np.ndarray:
    """Parse JSON object keys (cell positions) to int64 with Arrow's CSV reader (no per-key Python int())."""
    if not keys:
        return np.empty(0, dtype=np.int64)
    buf = "\n".join(keys).encode()
    try:
        tbl = pcsv.read_csv(
            pa.py_buffer(buf),
            read_options=pcsv.ReadOptions(column_names=["k"]),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pcsv.ConvertOptions(column_types={"k": pa.int64()}, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(dataset, f"JSON-stat cell keys are not integers ({one_line(exc, 120)})") from exc
    out = tbl.column("k").to_numpy()
    if len(out) != len(keys):
        raise EurostatPayloadError(dataset, "JSON-stat cell keys are not integers")
    return out


# --------------------------------------------------------------------------------------------- JSON-stat
def _numbers(items: list, dataset: str | None, positions: list | None = None) -> np.ndarray:
    """JSON-stat values as float64 (null → NaN, numeric strings read as numbers); a value that is no number (a
    JSON-stat dataset of text, not statistics) is one line naming its cell position."""
    try:
        vals = np.array(items, dtype=np.float64)
    except (TypeError, ValueError):
        for at, item in enumerate(items):
            try:
                float(item if item is not None else "nan")
            except (TypeError, ValueError):
                where = positions[at] if positions is not None else at
                raise EurostatPayloadError(
                    dataset,
                    f"JSON-stat value at position {where} is not a number ({one_line(repr(item), 40)}): not statistics",
                    kind="undecodable",
                ) from None
        raise
    if vals.ndim != 1:
        raise EurostatPayloadError(
            dataset, "JSON-stat value holds arrays, not one number per cell: not statistics", kind="undecodable"
        )
    return vals


class _Cells:
    """A sparse ``value`` / ``status`` object already parsed into (positions, Arrow array) by Arrow's CSV reader."""

    __slots__ = ("pos", "items")

    def __init__(self, pos: np.ndarray, items: pa.Array) -> None:
        self.pos, self.items = pos, items


_SECTION_RE = re.compile(rb'"(value|status)"\s*:\s*\{')
_TO_LINES = bytes.maketrans(b",", b"\n")


def _parse_cells(content: bytes, item_type: pa.DataType) -> _Cells | None:
    """``"0":1.5,"7":null`` → positions + items (null → null), or None if the text is not that simple shape."""
    if b"\\" in content:  # escapes: leave them to orjson
        return None
    text = content.translate(_TO_LINES, b'" \t\r\n')
    if not text:
        return _Cells(np.empty(0, np.int64), pa.array([], item_type))
    try:
        tbl = pcsv.read_csv(
            pa.py_buffer(text),
            read_options=pcsv.ReadOptions(column_names=["k", "v"], block_size=len(text) + 1),  # one chunk: no copies
            parse_options=pcsv.ParseOptions(delimiter=":", quote_char=False),
            convert_options=pcsv.ConvertOptions(
                column_types={"k": pa.int64(), "v": item_type}, null_values=["null"], strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    keys = tbl.column("k")
    if keys.null_count:
        return None
    return _Cells(keys.to_numpy(), tbl.column("v").combine_chunks())


def _cut_sparse_sections(body: bytes) -> dict | None:
    """Parse a JSON-stat body whose big sparse ``value`` / ``status`` objects are cut out and read by Arrow.

    These two objects hold one entry per cell (most of the bytes); as Python dicts they cost ~5× the payload in
    memory. Each must appear exactly once in the body and be flat (``"pos": number|string|null``); the rest is
    parsed by orjson and must show each cut object at the top level. Anything else → None (full orjson parse).
    """
    found = list(_SECTION_RE.finditer(body))
    names = [m.group(1) for m in found]
    if not found or len(set(names)) != len(names):
        return None
    pieces, cells, at = [], {}, 0
    for m in found:
        start = m.end()
        end = body.find(b"}", start)
        if end < 0:
            return None
        parsed = _parse_cells(body[start:end], pa.float64() if m.group(1) == b"value" else pa.string())
        if parsed is None:
            return None
        cells[m.group(1).decode()] = parsed
        pieces += [body[at:start], b'"__cut__":true']
        at = end
    pieces.append(body[at:])
    try:
        doc = orjson.loads(b"".join(pieces))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or any(doc.get(k) != {"__cut__": True} for k in cells):
        return None
    doc.update(cells)
    return doc


def _categories(dim: dict, size: int, name: str, dataset: str | None) -> list[str]:
    cat = dim.get("category") or {}
    index = cat.get("index")
    if index is None:
        codes = list(cat.get("label") or {})
    elif isinstance(index, list):
        codes = [str(c) for c in index]
    else:
        codes = [""] * len(index)
        for code, pos in index.items():
            if not isinstance(pos, int) or not 0 <= pos < len(index):
                raise EurostatPayloadError(dataset, f"dimension {name}: bad index position {pos!r}")
            codes[pos] = code
    if len(codes) != size:
        raise EurostatPayloadError(dataset, f"dimension {name}: {len(codes)} categories but size {size}")
    return codes


def decode_jsonstat(doc: dict, dataset: str | None = None) -> pd.DataFrame:
    """Decode a parsed JSON-stat 2.0 dataset (sparse or dense value/status) into the long table."""
    ids = [str(i) for i in doc["id"]]
    sizes = [int(s) for s in doc["size"]]
    if len(ids) != len(sizes):
        raise EurostatPayloadError(dataset, "JSON-stat id and size differ in length")
    ext = doc.get("extension") or {}
    dataset = dataset or (str(ext["id"]).lower() if ext.get("id") else None)
    cats = [_categories(doc["dimension"].get(i) or {}, s, i, dataset) for i, s in zip(ids, sizes, strict=True)]
    total = int(np.prod(sizes, dtype=np.int64)) if sizes else 0

    # values: positions + floats (null → NaN, dropped unless flagged)
    # cells cut out by Arrow are taken out of the doc so their memory goes as soon as they are consumed
    raw = doc.pop("value") if isinstance(doc.get("value"), _Cells) else doc.get("value")
    if isinstance(raw, _Cells):
        vpos = raw.pos
        vals = raw.items.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    elif isinstance(raw, dict):
        vpos = _int_keys(list(raw), dataset)
        try:
            vals = np.fromiter(raw.values(), dtype=np.float64, count=len(raw))
        except (TypeError, ValueError):  # null values (or not numbers: _numbers says which)
            vals = _numbers(list(raw.values()), dataset, positions=list(raw))
    elif isinstance(raw, list):
        vals = _numbers(raw, dataset)
        vpos = np.arange(len(vals), dtype=np.int64)
    elif raw is None:
        vpos, vals = np.empty(0, np.int64), np.empty(0, np.float64)
    else:
        raise EurostatPayloadError(dataset, "JSON-stat value is neither an object nor an array")
    if vpos.size and not (vpos[1:] > vpos[:-1]).all():
        order = np.argsort(vpos, kind="stable")
        vpos, vals = vpos[order], vals[order]
    has = ~np.isnan(vals)
    if not has.all():
        vpos, vals = vpos[has], vals[has]

    # status: positions + factorised strings
    st = doc.pop("status") if isinstance(doc.get("status"), _Cells) else doc.get("status")
    if isinstance(st, _Cells):
        spos = st.pos
        enc = st.items.dictionary_encode()
        scodes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        suniq = np.array(enc.dictionary.to_pylist(), dtype=object)
    elif isinstance(st, dict):
        spos = _int_keys(list(st), dataset)
        scodes, suniq = pd.factorize(np.array(list(st.values()), dtype=object), use_na_sentinel=True)
    elif isinstance(st, list):
        arr = np.array(st, dtype=object)
        keep = np.flatnonzero(pd.notna(arr) & (arr != ""))
        spos = keep.astype(np.int64)
        scodes, suniq = pd.factorize(arr[keep])
    elif isinstance(st, str) and st:
        spos, scodes, suniq = vpos, np.zeros(len(vpos), np.int64), np.array([st], dtype=object)
    else:
        spos, scodes, suniq = np.empty(0, np.int64), np.empty(0, np.int64), np.array([], dtype=object)
    if spos.size:
        ok = scodes >= 0
        spos, scodes = spos[ok], scodes[ok]
        if not (spos[1:] > spos[:-1]).all():
            order = np.argsort(spos, kind="stable")
            spos, scodes = spos[order], scodes[order]

    # union of valued and flagged cells, kept sorted by an O(n) insert
    pos, values = vpos, vals
    if spos.size:
        at = np.searchsorted(vpos, spos)
        found = at < len(vpos)
        found[found] = vpos[at[found]] == spos[found]
        extra = spos[~found]
        if extra.size:
            ins = at[~found]
            pos = np.insert(vpos, ins, extra)
            values = np.insert(vals, ins, np.nan)
    if pos.size and (pos[0] < 0 or pos[-1] >= total):
        raise EurostatPayloadError(dataset, f"JSON-stat cell position out of range (cube has {total} cells)")
    row_flag = np.full(len(pos), -1, dtype=np.int64)
    if spos.size:
        row_flag[np.searchsorted(pos, spos)] = scodes

    # coordinate of dimension i = (pos // stride_i) % size_i, computed per column (one temporary per thread);
    # size-1 dimensions are all 0: their code is repeated
    strides = np.cumprod([1, *sizes[::-1]])[::-1][1:] if sizes else []
    role_time = {str(t).lower() for t in (doc.get("role") or {}).get("time", [])}
    time_at = next((i for i, n in enumerate(ids) if n.lower() in _TIME_IDS), None)
    if time_at is None:
        time_at = next((i for i, n in enumerate(ids) if n.lower() in role_time), None)

    def column(i: int) -> Any:
        codes = [normalise_period(x) for x in cats[i]] if i == time_at else cats[i]
        if sizes[i] == 1:
            return _const(codes[0], len(pos))
        coord = np.floor_divide(pos, int(strides[i]))
        return _take(codes, np.remainder(coord, sizes[i], out=coord))

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:  # Arrow's take releases the GIL
        built = list(pool.map(column, range(len(ids))))
    dims = [(ids[i].lower(), built[i]) for i in range(len(ids)) if i != time_at]
    time_col = built[time_at] if time_at is not None else _const(None, len(pos))
    obs, conf = _flag_columns([str(u) for u in suniq], row_flag)
    return _frame(dataset, dims, time_col, values, obs, conf, _iso_updated(doc.get("updated")))
