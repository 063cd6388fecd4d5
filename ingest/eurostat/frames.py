"""The long table every Eurostat decoder returns, and the helpers that build it without a Python loop per cell.

Output columns, in order: ``dataset``, one column per non-time dimension (lower-case id, DSD order), ``time``,
``value`` (float64, NaN when the cell only has a flag), ``obs_status``, ``conf_status``,
``source_updated_at``.
String columns use pandas' ``str`` dtype (missing = NA), built from Arrow arrays (:func:`_take`, :func:`_const`).
Also here: period codes (:func:`normalise_period`) and status flags (:func:`split_flag`, :func:`_flag_columns`).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from ingest.eurostat.columns import TAIL_COLUMNS as TAIL_COLUMNS

CONF_FLAGS = frozenset("CNP")
_TIME_IDS = ("time", "time_period")
# pandas' ``str`` dtype, resolved once: looking the name up in the dtype registry costs more than building a
# small column (a fixed cost of every decoded frame).
STR = pd.api.types.pandas_dtype("str")
_LUX = ZoneInfo("Europe/Luxembourg")


_SUB_PERIOD = re.compile(r"(\d{4})-?([QSHW])(\d+)")
_MONTH = re.compile(r"(\d{4})M(\d{2})")


def normalise_period(code: str) -> str:
    """``2021`` → ``2021``; ``2021Q1``/``2021-Q1`` → ``2021-Q1``; ``2021M05``/``2021-05`` → ``2021-05``."""
    code = code.strip()
    if len(code) < 6 or (code[4] == "-" and code[5] not in "QSHW"):
        return code  # a year, a date or an ISO month already (the most common periods: no regular expression)
    m = _SUB_PERIOD.fullmatch(code)
    if m:
        return f"{m.group(1)}-{m.group(2)}{m.group(3)}"
    m = _MONTH.fullmatch(code)
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
