"""Decode Eurostat's SDMX 2.1 TSV and SDMX-CSV bodies (already unwrapped) into the long table (see
:mod:`ingest.eurostat.frames`).

Both are read by Arrow's CSV reader; cells, flags and series keys are split with Arrow compute and numpy, never with
a Python loop per cell. Anything that is not data raises :class:`EurostatPayloadError`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ingest.eurostat.errors import EurostatPayloadError, one_line
from ingest.eurostat.frames import _TIME_IDS, STR, _flag_columns, _frame, _take, last_update, normalise_period

_CELL_RE = r"^\s*(?P<v>\S*)\s*(?P<f>\S*)\s*$"


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
        (name, pd.array(pc.list_element(parts, i).take(sidx), dtype=STR))
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
            remap = np.array([-1 if not w else lookup.setdefault(w, len(lookup)) for w in words] + [-1], np.int64)
            codes = chunk.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)
            out[start : start + len(chunk)] = remap[codes]
            start += len(chunk)
    uniques = sorted(lookup, key=lookup.get)
    return tbl.column("key").combine_chunks(), values2d, flags2d, uniques


def _tsv_cells_generic(body: bytes, n_per: int, dataset: str | None) -> tuple[pa.Array, np.ndarray, np.ndarray, list]:
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
        values = pc.cast(pc.if_else(pc.equal(raw_v, ""), empty, raw_v), pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        raise EurostatPayloadError(dataset, f"SDMX-CSV has a non-numeric value ({one_line(exc, 120)})") from exc
    flag = col.get("OBS_FLAG", pa.array([""] * n, pa.large_string()))
    conf = col.get("CONF_STATUS", pa.array([""] * n, pa.large_string()))
    joined = pc.binary_join_element_wise(flag, conf, pa.scalar("|", pa.large_string()))
    joined = pc.if_else(pc.equal(joined, "|"), empty, joined)
    enc = pc.dictionary_encode(joined)
    fcodes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    obs_col, conf_col = _flag_columns(enc.dictionary.to_pylist(), fcodes)
    dims = [(c.lower(), pd.array(col[u], dtype=STR)) for c, u in zip(cols, upper, strict=True) if u not in special]
    penc = pc.dictionary_encode(col["TIME_PERIOD"])
    time_col = _take(
        [normalise_period(p) for p in penc.dictionary.to_pylist()],
        penc.indices.to_numpy(zero_copy_only=False),
    )
    updated = last_update(col.get("LAST UPDATE"))
    return _frame(dataset, dims, time_col, values, obs_col, conf_col, updated)
