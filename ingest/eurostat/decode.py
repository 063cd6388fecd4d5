"""Decode Eurostat bodies (JSON-stat 2.0, SDMX 2.1 TSV, SDMX-CSV; gzip or not) into one long table.

Output columns, in order: ``dataset``, one column per non-time dimension (lower-case id, DSD order), ``time``,
``value`` (float64, NaN when the cell only has a flag), ``obs_status``, ``conf_status``,
``source_updated_at``.
String columns use pandas' ``str`` dtype (missing = NA). Rows are the cells that have a value or a flag, in
cube order (series-major, time fastest). Anything that is not data raises :class:`EurostatPayloadError`.

Everything is vectorised (numpy / pyarrow): the cube is never densified and no Python loop runs per cell.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ingest.eurostat.envelope import check_json_doc, not_data_xml, sniff, unwrap
from ingest.eurostat.errors import EurostatPayloadError, one_line

TAIL_COLUMNS = ("time", "value", "obs_status", "conf_status", "source_updated_at")
CONF_FLAGS = frozenset("CNP")
_TIME_IDS = ("time", "time_period")
_CELL_RE = r"^\s*(?P<v>\S*)\s*(?P<f>\S*)\s*$"
_LUX = ZoneInfo("Europe/Luxembourg")
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
                raise EurostatPayloadError(
                    dataset, f"truncated or invalid JSON ({exc})", kind="truncated"
                ) from exc
        return decode_jsonstat(check_json_doc(doc, dataset), dataset)
    if kind == "tsv":
        return decode_tsv(body, dataset)
    if kind == "sdmx-csv":
        return decode_sdmx_csv(body, dataset)
    if kind in ("html", "xml"):
        raise not_data_xml(body, dataset, kind)
    raise EurostatPayloadError(dataset, f"unrecognised body starting with {body[:40]!r}", kind="unknown")


# --------------------------------------------------------------------------------------------- helpers
def normalise_period(code: str) -> str:
    """``2021`` → ``2021``; ``2021Q1``/``2021-Q1`` → ``2021-Q1``; ``2021M05``/``2021-05`` → ``2021-05``."""
    code = code.strip()
    m = re.fullmatch(r"(\d{4})-?([QSHW])(\d+)", code)
    if m:
        return f"{m.group(1)}-{m.group(2)}{m.group(3)}"
    m = re.fullmatch(r"(\d{4})M(\d{2})", code)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    return code


def split_flag(flag: str | None) -> tuple[str | None, str | None]:
    """Split a status into (observation status, confidentiality): ``"p|C"`` → (p, C), ``"|C"`` → (None, C).

    Without ``|``, upper-case C/N/P are confidentiality and the other letters observation status; the
    pre-2025 lower-case ``c`` (confidential) maps to confidentiality ``C``.
    """
    if not flag:
        return None, None
    flag = flag.strip()
    if "|" in flag:
        obs, conf = flag.split("|", 1)
    else:
        obs = "".join(ch for ch in flag if ch not in CONF_FLAGS)
        conf = "".join(ch for ch in flag if ch in CONF_FLAGS)
    if "c" in obs:
        obs = obs.replace("c", "")
        conf = conf or "C"
    return (obs.strip() or None), (conf.strip() or None)


def _iso_updated(value: Any) -> str | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        return str(value)
    return dt.isoformat() if dt.tzinfo else dt.replace(tzinfo=_LUX).isoformat()


def _take(categories: list[str | None] | pa.Array, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``categories[codes]`` as a pandas ``str`` array (code -1 → NA) via Arrow, without Python per cell."""
    cats = categories if isinstance(categories, pa.Array) else pa.array(categories, pa.large_string())
    if cats.type != pa.large_string():
        cats = cats.cast(pa.large_string())
    codes = np.asarray(codes)
    neg = codes < 0
    if len(codes) and neg.all():
        return pd.array(pa.nulls(len(codes), pa.large_string()), dtype="str")
    idx = pa.array(codes, mask=neg) if neg.any() else pa.array(codes)
    return pd.array(cats.take(idx), dtype="str")


def _const(value: str | None, n: int) -> pd.api.extensions.ExtensionArray:
    """``value`` repeated ``n`` times (NA if None), built from raw Arrow buffers."""
    if value is None:
        return pd.array(pa.nulls(n, pa.large_string()), dtype="str")
    raw = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw * n))
    return pd.array(arr, dtype="str")


def _frame(
    dataset: str | None,
    dims: list[tuple[str, Any]],
    time: Any,
    values: np.ndarray,
    obs: Any,
    conf: Any,
    updated: str | None,
) -> pd.DataFrame:
    n = len(values)
    cols: dict[str, Any] = {"dataset": _const(dataset, n)}
    for name, col in dims:
        cols[name] = col
    cols.update(
        time=time,
        value=np.asarray(values, dtype=np.float64),
        obs_status=obs,
        conf_status=conf,
        source_updated_at=_const(updated, n),
    )
    return pd.DataFrame(cols, copy=False)


def _flag_columns(uniques: list[str | None], codes: np.ndarray) -> tuple[Any, Any]:
    """Observation / confidentiality columns from factorised flag strings (codes -1 = no flag)."""
    obs_u: list[str | None] = []
    conf_u: list[str | None] = []
    for u in uniques:
        o, c = split_flag(u)
        obs_u.append(o)
        conf_u.append(c)
    obs_cats = sorted({o for o in obs_u if o})
    conf_cats = sorted({c for c in conf_u if c})
    obs_map = np.array([obs_cats.index(o) if o else -1 for o in obs_u] + [-1], dtype=np.int64)
    conf_map = np.array([conf_cats.index(c) if c else -1 for c in conf_u] + [-1], dtype=np.int64)
    # code -1 indexes the trailing -1 sentinel of each map
    return _take(obs_cats, obs_map[codes]), _take(conf_cats, conf_map[codes])


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
        raise EurostatPayloadError(
            dataset, f"JSON-stat cell keys are not integers ({one_line(exc, 120)})"
        ) from exc
    out = tbl.column("k").to_numpy()
    if len(out) != len(keys):
        raise EurostatPayloadError(dataset, "JSON-stat cell keys are not integers")
    return out


# --------------------------------------------------------------------------------------------- JSON-stat
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
        pieces += [body[at:start], b"\"__cut__\":true"]
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
    cats = [
        _categories(doc["dimension"].get(i) or {}, s, i, dataset) for i, s in zip(ids, sizes, strict=True)
    ]
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
        except (TypeError, ValueError):  # null values
            vals = np.array(list(raw.values()), dtype=np.float64)
    elif isinstance(raw, list):
        vals = np.array(raw, dtype=np.float64)
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


# --------------------------------------------------------------------------------------------- TSV
def _read_strings(body: bytes, names: list[str], skip: int, delimiter: str, quote: str | bool) -> pa.Table:
    return pcsv.read_csv(
        pa.py_buffer(body),
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=skip, block_size=1 << 24),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=quote),
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.large_string() for n in names}, strings_can_be_null=False
        ),
    )


def decode_tsv(body: bytes, dataset: str | None = None) -> pd.DataFrame:
    """Decode an SDMX 2.1 TSV body (``freq,unit,geo\\TIME_PERIOD<TAB>2000 <TAB>…``) into the long table."""
    header = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    fields = header.split("\t")
    dim_names = [d.strip().lower() for d in fields[0].split("\\", 1)[0].split(",")]
    periods = [normalise_period(p) for p in fields[1:]]
    n_per = len(periods)
    if not n_per:
        raise EurostatPayloadError(dataset, "TSV header has no time periods")
    fast = _tsv_cells_fast(body, n_per)
    if fast is None:
        keys, values2d, flags2d, flag_uniques = _tsv_cells_generic(body, n_per, dataset)
    else:
        keys, values2d, flags2d, flag_uniques = fast
    parts = pc.split_pattern(keys, ",")
    lengths = pc.list_value_length(parts)
    if len(keys) and (pc.min(lengths).as_py() != len(dim_names) or pc.max(lengths).as_py() != len(dim_names)):
        raise EurostatPayloadError(dataset, f"TSV series keys do not all have {len(dim_names)} dimensions")
    # series-major order: cell k = s * n_per + p
    keep = ~np.isnan(values2d) | (flags2d >= 0)
    idx = np.flatnonzero(keep.ravel())
    series, per = np.divmod(idx, n_per)
    values = values2d.ravel()[idx]
    obs, conf = _flag_columns(flag_uniques, flags2d.ravel()[idx])
    sidx = pa.array(series)
    dims = [
        (name, pd.array(pc.list_element(parts, i).take(sidx), dtype="str"))
        for i, name in enumerate(dim_names)
        if name not in _TIME_IDS
    ]
    return _frame(dataset, dims, _take(periods, per), values, obs, conf, None)


def _tsv_cells_fast(body: bytes, n_per: int) -> tuple[pa.Array, np.ndarray, np.ndarray, list] | None:
    """Split each ``value flags`` cell at its space (one bytes.replace) so Arrow's CSV reader parses floats
    and dictionary-encodes flags in C. None if the body does not fit (then the generic path runs)."""
    names = ["key"] + [f"{k}{i}" for i in range(n_per) for k in ("v", "f")]
    types: dict[str, pa.DataType] = {"key": pa.large_string()}
    types.update({f"v{i}": pa.float64() for i in range(n_per)})
    types.update({f"f{i}": pa.dictionary(pa.int32(), pa.string()) for i in range(n_per)})
    try:
        tbl = pcsv.read_csv(
            pa.py_buffer(body.replace(b" ", b"\t")),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=[":", ""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    n = tbl.num_rows
    values2d = np.empty((n, n_per), dtype=np.float64)
    flags2d = np.empty((n, n_per), dtype=np.int64)
    uniques: list[str] = []
    lookup: dict[str, int] = {}
    for i in range(n_per):
        values2d[:, i] = tbl.column(f"v{i}").to_numpy()
        out, start = flags2d[:, i], 0
        for chunk in tbl.column(f"f{i}").chunks:
            words = chunk.dictionary.to_pylist()
            remap = np.array(
                [-1 if not w else lookup.setdefault(w, len(lookup)) for w in words] + [-1], np.int64
            )
            codes = chunk.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)
            out[start : start + len(chunk)] = remap[codes]
            start += len(chunk)
    uniques = sorted(lookup, key=lookup.get)
    return tbl.column("key").combine_chunks(), values2d, flags2d, uniques


def _tsv_cells_generic(
    body: bytes, n_per: int, dataset: str | None
) -> tuple[pa.Array, np.ndarray, np.ndarray, list]:
    """Slower, tolerant path: read cells as strings and split them with a vectorised regex."""
    names = [f"c{i}" for i in range(n_per + 1)]
    try:
        tbl = _read_strings(body, names, 1, "\t", False)
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(
            dataset, f"malformed or truncated TSV ({one_line(exc, 160)})", kind="truncated"
        ) from exc
    n = tbl.num_rows
    cells = pa.concat_arrays([tbl.column(i + 1).combine_chunks() for i in range(n_per)])  # period-major
    m = pc.extract_regex(cells, _CELL_RE)
    if m.null_count:
        raise EurostatPayloadError(dataset, "TSV has a cell that is not 'value flags'")
    v, f = m.field("v"), m.field("f")
    null = pa.scalar(None, pa.large_string())
    try:
        values = pc.cast(pc.if_else(pc.or_(pc.equal(v, ":"), pc.equal(v, "")), null, v), pa.float64())
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(dataset, f"TSV has a non-numeric value ({one_line(exc, 120)})") from exc
    enc = pc.dictionary_encode(pc.if_else(pc.equal(f, ""), null, f))
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    values2d = values.to_numpy(zero_copy_only=False).reshape(n_per, n).T.copy()
    flags2d = codes.reshape(n_per, n).T.copy()
    return tbl.column(0).combine_chunks(), values2d, flags2d, enc.dictionary.to_pylist()


# --------------------------------------------------------------------------------------------- SDMX-CSV
def decode_sdmx_csv(body: bytes, dataset: str | None = None) -> pd.DataFrame:
    """Decode an SDMX-CSV body (``DATAFLOW, LAST UPDATE, <dims>, TIME_PERIOD, OBS_VALUE, OBS_FLAG, …``)."""
    header = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    cols = [c.strip().strip('"') for c in header.split(",")]
    try:
        tbl = _read_strings(body, cols, 1, ",", '"')
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(
            dataset, f"malformed or truncated SDMX-CSV ({one_line(exc, 160)})", kind="truncated"
        ) from exc
    upper = [c.upper() for c in cols]
    special = {"DATAFLOW", "LAST UPDATE", "TIME_PERIOD", "OBS_VALUE", "OBS_FLAG", "CONF_STATUS"}
    if "TIME_PERIOD" not in upper or "OBS_VALUE" not in upper:
        raise EurostatPayloadError(dataset, "SDMX-CSV without TIME_PERIOD/OBS_VALUE columns")
    col = {u: tbl.column(i).combine_chunks() for i, u in enumerate(upper)}
    n = tbl.num_rows
    if dataset is None and n and "DATAFLOW" in col:
        m = re.search(r":([^(]+)", col["DATAFLOW"][0].as_py())
        dataset = m.group(1).lower() if m else None
    raw_v = col["OBS_VALUE"]
    empty = pa.scalar(None, pa.large_string())
    try:
        values = pc.cast(pc.if_else(pc.equal(raw_v, ""), empty, raw_v), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(
            dataset, f"SDMX-CSV has a non-numeric value ({one_line(exc, 120)})"
        ) from exc
    flag = col.get("OBS_FLAG", pa.array([""] * n, pa.large_string()))
    conf = col.get("CONF_STATUS", pa.array([""] * n, pa.large_string()))
    joined = pc.binary_join_element_wise(flag, conf, pa.scalar("|", pa.large_string()))
    joined = pc.if_else(pc.equal(joined, "|"), empty, joined)
    enc = pc.dictionary_encode(joined)
    fcodes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    obs_col, conf_col = _flag_columns(enc.dictionary.to_pylist(), fcodes)
    dims = [
        (c.lower(), pd.array(col[u], dtype="str"))
        for c, u in zip(cols, upper, strict=True)
        if u not in special
    ]
    penc = pc.dictionary_encode(col["TIME_PERIOD"])
    time_col = _take(
        [normalise_period(p) for p in penc.dictionary.to_pylist()],
        penc.indices.to_numpy(zero_copy_only=False),
    )
    updated = None
    if "LAST UPDATE" in col and n:
        try:
            dt = datetime.strptime(col["LAST UPDATE"][0].as_py().strip(), "%d/%m/%y %H:%M:%S")
            updated = dt.replace(tzinfo=_LUX).isoformat()
        except ValueError:
            updated = None
    return _frame(dataset, dims, time_col, values, obs_col, conf_col, updated)
