"""SDMX-CSV data messages, 1.0 (first column ``DATAFLOW``; Eurostat adds ``LAST UPDATE``) and 2.0 (``STRUCTURE``,
``STRUCTURE_ID``, optional ``ACTION``), read by Arrow's CSV reader (every column as text; no Python loop per cell).

The columns before ``OBS_VALUE`` are the dimensions (``TIME_PERIOD`` among them, which becomes ``time``), the
columns after it the attributes, as both versions of the format lay them out; with a DSD only its dimensions are
kept. A header cell ``ID: Name`` (the "labels=both" flavour) is read as ``ID``; cells are kept as written
(codes, or labels when the provider was asked for labels).
"""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ingest.eurostat.frames import STR, _frame, _take, last_update, normalise_period
from ingest.sdmx.errors import SdmxError
from ingest.sdmx.structure import Dsd
from ingest.sdmx.table import CONF_IDS, STATUS_IDS, TIME_IDS

LEADING = frozenset({"DATAFLOW", "LAST UPDATE", "STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION"})
_FLOW = re.compile(r":([^(:$]+)(?:\$[^(]*)?\(")


def _header(body: bytes) -> list[str]:
    first = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", "replace")
    cells = next(
        iter(
            pcsv.read_csv(
                pa.py_buffer(first.encode() + b"\n"),
                read_options=pcsv.ReadOptions(autogenerate_column_names=True),
                convert_options=pcsv.ConvertOptions(strings_can_be_null=False),
            ).to_pylist()
        ),
        {},
    )
    return [str(c).split(": ", 1)[0].strip() for c in cells.values()]


def read_csv(body: bytes, dsd: Dsd | None = None, dataset: str | None = None) -> pd.DataFrame:
    """The long table of an SDMX-CSV body, named ``dataset``, else after the dataflow of its first row."""
    body = body.removeprefix(b"\xef\xbb\xbf")
    try:
        names = _header(body)
    except pa.ArrowInvalid as exc:
        raise SdmxError(f"malformed SDMX-CSV header ({exc})") from None
    upper = [n.upper() for n in names]
    if "OBS_VALUE" not in upper:
        raise SdmxError("SDMX-CSV without an OBS_VALUE column")
    if len(set(upper)) != len(upper):
        raise SdmxError(f"SDMX-CSV header names a column twice: {names}")
    try:
        tbl = pcsv.read_csv(
            pa.py_buffer(body),
            read_options=pcsv.ReadOptions(column_names=upper, skip_rows=1, block_size=1 << 24),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.large_string() for n in upper}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SdmxError(f"malformed or truncated SDMX-CSV ({exc})") from None
    col = {u: tbl.column(u).combine_chunks() for u in upper}
    n = tbl.num_rows
    if "ACTION" in col and n and pc.any(pc.equal(col["ACTION"], "D")).as_py():
        raise SdmxError("SDMX-CSV 2.0 with ACTION D (deletions): not observations")
    value_at = upper.index("OBS_VALUE")
    wanted = {d.upper() for d in dsd.dimensions} if dsd else None
    dims = [
        (names[i].lower(), pd.array(col[u], dtype=STR))
        for i, u in enumerate(upper[:value_at])
        if u not in LEADING and u not in TIME_IDS and (wanted is None or u in wanted)
    ]
    empty = pa.scalar(None, pa.large_string())
    raw = col["OBS_VALUE"]
    try:
        values = pc.cast(pc.if_else(pc.equal(raw, ""), empty, raw), pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        raise SdmxError(f"SDMX-CSV has a value that is not a number ({exc})") from None
    time_name = next((u for u in upper if u in TIME_IDS), None)
    if time_name:
        enc = pc.dictionary_encode(col[time_name])
        time = _take([normalise_period(p) or None for p in enc.dictionary.to_pylist()], enc.indices.to_numpy())
    else:
        time = pd.array([None] * n, dtype=STR)

    def status(ids: tuple[str, ...]):
        got = next((col[i] for i in ids if i in upper[value_at:]), None)
        return (
            pd.array(pc.if_else(pc.equal(got, ""), empty, got), dtype=STR)
            if got is not None
            else (pd.array([None] * n, dtype=STR))
        )

    flow = col.get("STRUCTURE_ID", col.get("DATAFLOW"))
    m = _FLOW.search(flow[0].as_py()) if dataset is None and flow is not None and n else None
    return _frame(
        dataset or (m.group(1).lower() if m else None),
        dims,
        time,
        values,
        status(STATUS_IDS),
        status(CONF_IDS),
        last_update(col.get("LAST UPDATE")),
    )
