"""Decode Eurostat's SDMX 2.1 TSV and SDMX-CSV bodies (already unwrapped) into the long table (see
:mod:`ingest.eurostat.frames`).

Both are read by Arrow's CSV reader; cells, flags and series keys are split with Arrow compute and numpy, never with
a Python loop per cell (the TSV into an Arrow table by :mod:`ingest.eurostat.tsv`, then a frame). Anything that is
not data raises :class:`EurostatPayloadError`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest.eurostat.errors import EurostatPayloadError, one_line
from ingest.eurostat.frames import STR, _flag_columns, _frame, _take, last_update, normalise_period, table_frame
from ingest.eurostat.tsv import decode_tsv_table, read_strings


# --------------------------------------------------------------------------------------------- TSV
def decode_tsv(body: bytes, dataset: str | None = None) -> pd.DataFrame:
    """Decode an SDMX 2.1 TSV body (``freq,unit,geo\\TIME_PERIOD<TAB>2000 <TAB>…``) into the long table."""
    return table_frame(decode_tsv_table(body, dataset))


# --------------------------------------------------------------------------------------------- SDMX-CSV
def decode_sdmx_csv(body: bytes, dataset: str | None = None) -> pd.DataFrame:
    """Decode an SDMX-CSV body (``DATAFLOW, LAST UPDATE, <dims>, TIME_PERIOD, OBS_VALUE, OBS_FLAG, …``)."""
    header = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    cols = [c.strip().strip('"') for c in header.split(",")]
    try:
        tbl = read_strings(body, cols, 1, ",", '"')
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
