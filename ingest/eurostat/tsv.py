"""Eurostat's SDMX 2.1 TSV (``freq,unit,geo\\TIME_PERIOD<TAB>2000 <TAB>…``) decoded into an Arrow table.

The long table's columns (:mod:`ingest.eurostat.columns`), as Arrow: the text columns dictionary-encoded (a series'
dimension codes, the periods and the flags are stored once per piece and referenced per row), ``value`` float64
(null when the cell only has a flag). Rows are the cells with a value or a flag, series-major, time fastest.
:func:`ingest.eurostat.frames.table_frame` turns it into the pandas frame every decoder returns; the bulk path
(:mod:`ingest.eurostat.bulk`, ``ingest.tasks.bulk``) works on the table itself.

No pandas here (numpy and Arrow only): a process that only decodes bulk files does not pay pandas' import. The
cells are parsed by Arrow's CSV reader; flags and series keys are split with Arrow compute and numpy, never with a
Python loop per cell. Anything that is not data raises :class:`EurostatPayloadError`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ingest.eurostat.codes import TIME_IDS, flag_maps, normalise_period
from ingest.eurostat.errors import EurostatPayloadError, one_line

_CELL_RE = r"^\s*(?P<v>\S*)\s*(?P<f>\S*)\s*$"
_TEXT = pa.large_string()


def read_strings(body: bytes, names: list[str], skip: int, delimiter: str, quote: str | bool) -> pa.Table:
    """Every column of a delimited body as (non-null) text."""
    return pcsv.read_csv(
        pa.py_buffer(body),
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=skip, block_size=1 << 24),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=quote),
        convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, _TEXT), strings_can_be_null=False),
    )


def decode_tsv_table(body: bytes, dataset: str | None = None) -> pa.Table:
    """Decode an SDMX 2.1 TSV body (header line included) into the long table, as Arrow (module docstring)."""
    header = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    fields = header.split("\t")
    dim_names = [d.strip().lower() for d in fields[0].split("\\", 1)[0].split(",")]
    periods = [normalise_period(p) for p in fields[1:]]
    n_per = len(periods)
    if not n_per:
        raise EurostatPayloadError(dataset, "TSV header has no time periods")
    cells = _tsv_cells_fast(body, n_per)
    keys, values, flags, flag_uniques = cells if cells is not None else _tsv_cells_generic(body, n_per, dataset)
    parts = pc.split_pattern(keys, ",")
    lengths = numpy(pc.list_value_length(parts), np.int32, -1)
    if len(keys) and (lengths.min() != len(dim_names) or lengths.max() != len(dim_names)):
        raise EurostatPayloadError(dataset, f"TSV series keys do not all have {len(dim_names)} dimensions")
    # the cells are held period-major ([period, series]); the rows come out series-major (cell k = s * n_per + p)
    missing = np.isnan(values)
    series, per = np.divmod(np.flatnonzero((~missing | (flags >= 0)).T.ravel()), n_per)
    at = per * values.shape[1] + series  # each row's cell in the period-major arrays
    n = len(series)
    columns: dict[str, pa.Array] = {"dataset": constant(dataset, n)}
    for i, name in enumerate(dim_names):
        if name not in TIME_IDS:
            codes = pc.dictionary_encode(pc.list_element(parts, from_numpy(np.array([i]))[0]))  # one per series
            columns[name] = _coded(numpy(codes.indices, np.int32, -1)[series], codes.dictionary)
    columns["time"] = _coded(per, text(periods))
    columns["value"] = from_numpy(values.ravel().take(at), mask=missing.ravel().take(at))
    obs_cats, conf_cats, obs_map, conf_map = flag_maps(flag_uniques)
    flags = flags.ravel().take(at)  # -1 (no flag) indexes each map's trailing -1
    columns["obs_status"] = _coded(np.asarray(obs_map, np.int32)[flags], text(obs_cats))
    columns["conf_status"] = _coded(np.asarray(conf_map, np.int32)[flags], text(conf_cats))
    columns["source_updated_at"] = pa.nulls(n, _TEXT)
    return pa.table(columns)


def constant(value: str | None, n: int) -> pa.Array:
    """``value`` on every one of ``n`` rows (null when None), stored once."""
    if value is None:
        return pa.nulls(n, _TEXT)
    return pa.DictionaryArray.from_arrays(from_numpy(np.zeros(n, np.int32)), text([value]))


def _coded(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    """Row ``i`` = ``dictionary[codes[i]]``, null where the code is negative."""
    codes = codes.astype(np.int32, copy=False)
    indices = from_numpy(codes, mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, dictionary.cast(_TEXT))


# Arrays are made from and read as raw buffers here: ``pa.array``, ``pa.scalar``, Arrow's ``to_numpy`` and
# ``fill_null`` with a Python value all import pandas (~0.5 s that a process decoding one file would otherwise pay).
def numpy(arr: pa.Array, dtype, fill) -> np.ndarray:
    """A primitive Arrow array as numpy (a view of its values buffer when it has no null), nulls as ``fill``."""
    size = np.dtype(dtype).itemsize
    values = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * size)
    if not arr.null_count:
        return values
    bits = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), bitorder="little")
    return np.where(bits[arr.offset : arr.offset + len(arr)].view(bool), values, fill)


def from_numpy(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A numpy int32, int64 or float64 array as Arrow (null where ``mask``), sharing its buffer."""
    values = np.ascontiguousarray(values)
    validity = None
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    kind = {"i4": pa.int32(), "i8": pa.int64(), "f8": pa.float64()}[values.dtype.str[1:]]
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)])


def text(values: list[str | None]) -> pa.Array:
    """A (short) list of strings as an Arrow ``large_string`` array (None: null)."""
    raw = [v.encode() if v is not None else b"" for v in values]
    offsets = np.zeros(len(raw) + 1, np.int64)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    nulls = np.array([v is None for v in values], bool)
    validity = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
    return pa.Array.from_buffers(_TEXT, len(raw), [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(raw))])


def _tsv_cells_fast(body: bytes, n_per: int) -> tuple[pa.Array, np.ndarray, np.ndarray, list] | None:
    """Split each ``value flags`` cell at its space (one bytes.replace) so Arrow's CSV reader parses floats
    in C; flags are read as bytes (no UTF-8 check: a flag is a few ASCII letters) and encoded per period. The cells
    period-major ([period, series]); None if the body does not fit (then the generic path runs)."""
    names = ["key"] + [f"{k}{i}" for i in range(n_per) for k in ("v", "f")]
    types: dict[str, pa.DataType] = {"key": _TEXT}
    types.update({f"v{i}": pa.float64() for i in range(n_per)})
    types.update({f"f{i}": pa.binary() for i in range(n_per)})
    try:
        tbl = pcsv.read_csv(
            pa.py_buffer(body.replace(b" ", b"\t")),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=[":", ""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    n = tbl.num_rows
    # every period's column end to end (period-major), then one pass each: values as numpy, flags encoded
    values = numpy(pa.concat_arrays([_one(tbl.column(f"v{i}")) for i in range(n_per)]), np.float64, np.nan)
    flags = pc.dictionary_encode(pa.concat_arrays([_one(tbl.column(f"f{i}")) for i in range(n_per)]))
    try:
        uniques = [w.decode() for w in flags.dictionary.to_pylist()]
    except UnicodeDecodeError:
        return None
    codes = numpy(flags.indices, np.int32, -1)  # no flag (null): -1
    return _one(tbl.column("key")), values.reshape(n_per, n), codes.reshape(n_per, n), uniques


def _one(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _tsv_cells_generic(body: bytes, n_per: int, dataset: str | None) -> tuple[pa.Array, np.ndarray, np.ndarray, list]:
    """Slower, tolerant path: read cells as strings and split them with a vectorised regex (period-major, as
    :func:`_tsv_cells_fast`)."""
    names = [f"c{i}" for i in range(n_per + 1)]
    try:
        tbl = read_strings(body, names, 1, "\t", False)
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(
            dataset, f"malformed or truncated TSV ({one_line(exc, 160)})", kind="truncated"
        ) from exc
    n = tbl.num_rows
    cells = pa.concat_arrays([_one(tbl.column(i + 1)) for i in range(n_per)])  # period-major
    m = pc.extract_regex(cells, _CELL_RE)
    if m.null_count:
        raise EurostatPayloadError(dataset, "TSV has a cell that is not 'value flags'")
    v, f = m.field("v"), m.field("f")
    null, colon, empty = text([None, ":", ""])  # scalars (Python values would be converted through pandas)
    try:
        values = pc.cast(pc.if_else(pc.or_(pc.equal(v, colon), pc.equal(v, empty)), null, v), pa.float64())
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(dataset, f"TSV has a non-numeric value ({one_line(exc, 120)})") from exc
    enc = pc.dictionary_encode(pc.if_else(pc.equal(f, empty), null, f))
    flags = numpy(enc.indices, np.int32, -1).reshape(n_per, n)
    return _one(tbl.column(0)), numpy(values, np.float64, np.nan).reshape(n_per, n), flags, enc.dictionary.to_pylist()
