"""The long table every Eurostat decoder returns, and the helpers that build it without a Python loop per cell.

Output columns, in order: ``dataset``, one column per non-time dimension (lower-case id, DSD order), ``time``,
``value`` (float64, NaN when the cell only has a flag), ``obs_status``, ``conf_status``,
``source_updated_at``.
String columns use pandas' ``str`` dtype (missing = NA), built from Arrow arrays (:func:`_take`, :func:`_const`);
:func:`table_frame` turns the Arrow long table of :mod:`ingest.eurostat.tsv` into this frame. Period codes
(:func:`normalise_period`) and status flags (:func:`split_flag`) live in :mod:`ingest.eurostat.codes` (re-exported
here); :func:`_flag_columns` builds the two flag columns from them.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from ingest.eurostat.codes import CONF_FLAGS as CONF_FLAGS
from ingest.eurostat.codes import flag_maps
from ingest.eurostat.codes import normalise_period as normalise_period
from ingest.eurostat.codes import split_flag as split_flag
from ingest.eurostat.columns import TAIL_COLUMNS as TAIL_COLUMNS

# pandas' ``str`` dtype, resolved once: looking the name up in the dtype registry costs more than building a
# small column (a fixed cost of every decoded frame).
STR = pd.api.types.pandas_dtype("str")
_LUX = ZoneInfo("Europe/Luxembourg")


def _iso_updated(value: Any) -> str | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        return str(value)
    return dt.isoformat() if dt.tzinfo else dt.replace(tzinfo=_LUX).isoformat()


def last_update(column) -> str | None:
    """Eurostat's SDMX-CSV ``LAST UPDATE`` column (first row, ``30/10/25 23:00:00``, Luxembourg time) as an ISO
    timestamp; None when absent, empty or in another shape."""
    if column is None or not len(column):
        return None
    try:
        return datetime.strptime(column[0].as_py().strip(), "%d/%m/%y %H:%M:%S").replace(tzinfo=_LUX).isoformat()
    except (ValueError, AttributeError):
        return None


def _take(categories: list[str | None] | pa.Array, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``categories[codes]`` as a pandas ``str`` array (code -1 → NA) via Arrow, without Python per cell."""
    cats = categories if isinstance(categories, pa.Array) else pa.array(categories, pa.large_string())
    if cats.type != pa.large_string():
        cats = cats.cast(pa.large_string())
    codes = np.asarray(codes)
    neg = codes < 0
    if len(codes) and neg.all():
        return pd.array(pa.nulls(len(codes), pa.large_string()), dtype=STR)
    idx = pa.array(codes, mask=neg) if neg.any() else pa.array(codes)
    return pd.array(cats.take(idx), dtype=STR)


def _const(value: str | None, n: int) -> pd.api.extensions.ExtensionArray:
    """``value`` repeated ``n`` times (NA if None), built from raw Arrow buffers."""
    if value is None:
        return pd.array(pa.nulls(n, pa.large_string()), dtype=STR)
    raw = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw * n))
    return pd.array(arr, dtype=STR)


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
    obs_cats, conf_cats, obs_map, conf_map = flag_maps(uniques)
    # code -1 indexes the trailing -1 sentinel of each map
    return _take(obs_cats, np.asarray(obs_map)[codes]), _take(conf_cats, np.asarray(conf_map)[codes])


def table_frame(table: pa.Table) -> pd.DataFrame:
    """A long table decoded into Arrow (:mod:`ingest.eurostat.tsv`: dictionary-encoded text, null values) as the
    pandas frame every decoder returns (``str`` columns, NaN values)."""
    cols: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if name == "value":
            cols[name] = arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            continue
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        cols[name] = pd.array(arr.cast(pa.large_string()), dtype=STR)
    return pd.DataFrame(cols, copy=False)


def write_csv(frame: pd.DataFrame, output: Path | None) -> int:
    """A decode command's last step: the long table as CSV into ``output``, else stdout (quiet when the reader
    stops early, as ``| head`` does). The exit status: 2 with one stderr line when ``output`` cannot be written."""
    if output is None:
        try:
            frame.to_csv(sys.stdout, index=False, lineterminator="\n")
            sys.stdout.flush()
        except BrokenPipeError:
            sys.stdout = None  # type: ignore[assignment]  # silence the flush at exit
        return 0
    try:
        frame.to_csv(output, index=False, lineterminator="\n")
    except OSError as exc:
        print(f"error: {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(frame):,} rows to {output}", file=sys.stderr)
    return 0
