"""Big Eurostat datasets (catalogue ``bulk: true``): write-audit-publish in the warehouse, in bounded memory.

* extract (:func:`extract`): Eurostat's whole-dataset SDMX-TSV file, streamed from the HTTP body into the archive as
  received (``Archive.put_stream``, bounded by ``max_bulk_bytes``), change-detected by the table of contents like
  every Eurostat dataset (``tasks.eurostat.plan``).
* write + audit (:func:`stage`, the batch's ``prepare`` in ``gate.validate``): the archived file decoded piece by
  piece (:mod:`ingest.eurostat.bulk`), each piece's selected rows COPYed into a table of its own in ``raw_staging``
  (the raw columns plus the dimension columns the suite checks), in one transaction; then the same
  ``eurostat_observations`` suite, run there by GX's SQL engine (``Validator.validate_table``): same checks,
  severities, audit records and Data Docs as a batch validated in memory.
* publish (``gate.load`` → :func:`ingest.load.publish_staged`): the dimension columns dropped and the dataset's
  partition of ``raw.eurostat_observations`` swapped for the staged table, in the load's transaction.

A task's memory is a few decoded pieces (``ingest.eurostat.bulk.BLOCK_BYTES`` of text each), whatever the size.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING

from ingest.archive import Archive
from ingest.config import Catalogue, load_catalogue
from ingest.tasks.common import Batch, RunContext, log
from ingest.warehouse import LOADER, connect

if TYPE_CHECKING:
    import pandas as pd

SOURCE = "eurostat"
TABLE = "eurostat_observations"
STAGING_SCHEMA = "raw_staging"
SUITE = "eurostat_observations"
RAW_COLUMNS = (
    ("dataset", "text"),
    ("series_key", "text"),
    ("dims", "jsonb"),
    ("geo", "text"),
    ("time", "text"),
    ("value", "numeric"),
    ("obs_status", "text"),
    ("conf_status", "text"),
    ("source_updated_at", "timestamptz"),
    ("batch_id", "text"),
)


def extract(ctx: RunContext, code: str, archive: Archive, catalogue: Catalogue | None = None):
    """Download ``code``'s bulk file into the archive (streamed; recorded in audit.fetches); its BulkReceived."""
    from ingest.tasks.common import record_fetch
    from ingest.tasks.eurostat import _client

    catalogue = catalogue or load_catalogue()
    limit = int(catalogue.limits("eurostat")["max_bulk_bytes"])
    got = _client().fetch_bulk(code, archive.put_stream, limit)
    with connect(role=LOADER) as conn, conn.cursor() as cur:
        record_fetch(cur, ctx, SOURCE, code, got.url, got.status, got.sha256, got.size)
    conn.close()
    return got


def check_received(code: str, got, archive: Archive) -> None:
    """Raise EurostatPayloadError when a stored bulk body is cut at the size limit or is not SDMX TSV (an error page,
    an error JSON, an asynchronous envelope): only its head is read."""
    from ingest.eurostat.bulk import iter_frames
    from ingest.eurostat.errors import EurostatPayloadError

    limits = load_catalogue().limits("eurostat")
    if got.cut:
        raise EurostatPayloadError(code, f"body exceeds {limits['max_bulk_bytes']} bytes (stopped reading)", kind="too_large")
    sha, status = got.sha256, got.status
    with archive.open(sha) as fh:
        try:
            next(iter(iter_frames(fh, code, max_bytes=1 << 20, max_ratio=float(limits["max_compression_ratio"]))))
        except StopIteration:
            pass
        except EurostatPayloadError as exc:
            if exc.kind != "too_large":  # a real bulk file is bigger than the head read here
                raise
    if status >= 400:
        raise EurostatPayloadError(code, f"HTTP {status} for the bulk file", kind="error", status=status)


def staged_name(batch: Batch) -> str:
    """A new staging table for a batch (two runs staging the same content never share one)."""
    return f"{TABLE}_{hashlib.sha256(batch.batch_id.encode()).hexdigest()[:12]}_{uuid.uuid4().hex[:12]}"


def stage(batch: Batch, catalogue: Catalogue | None = None):
    """Write a bulk batch into its staging table and describe the check to run there (a ``gate.Prepared`` whose
    ``staged`` is set); a batch raw already holds in full is not staged again (``tables`` empty, nothing staged)."""
    import pandas as pd
    from psycopg2 import sql

    from ingest.eurostat import bulk
    from ingest.eurostat.errors import EurostatPayloadError
    from ingest.load import copy_frame
    from ingest.tasks.eurostat import dimension_columns, to_raw_rows
    from ingest.tasks.gate import BatchRejected, Prepared, StagedTable

    catalogue = catalogue or load_catalogue()
    ds = catalogue.dataset(batch.object)
    partition = {"dataset": batch.object}
    conn = connect(role=LOADER)
    try:
        if _held_in_full(conn, batch):
            log.info("eurostat %s: raw holds this bulk batch already: not staged again", batch.object)
            return Prepared(tables={}, checks=[], partition=partition)
        limits = catalogue.limits("eurostat")
        name = staged_name(batch)
        target = sql.Identifier(STAGING_SCHEMA, name)
        geo, since = catalogue.geo_codes(ds), catalogue.eurostat.get("since_time_period")
        updated = batch.meta.get("toc_last_update")
        profile: dict[str, set] = {}
        dims: list[str] = []
        rows = 0
        archive = Archive()
        with conn, conn.cursor() as cur, archive.open(batch.sha256[0]) as fh:
            cur.execute(sql.SQL("drop table if exists {}").format(target))
            pieces = bulk.iter_frames(
                fh,
                batch.object,
                max_bytes=int(limits["max_bulk_decompressed_bytes"]),
                max_ratio=float(limits["max_compression_ratio"]),
                block_bytes=bulk.BLOCK_BYTES,
            )
            for piece in pieces:
                frame = bulk.select(piece, ds.filters, geo, since)
                if not len(frame):
                    continue
                if not dims:
                    dims = dimension_columns(frame)
                    _create(cur, target, dims, batch)
                elif dimension_columns(frame) != dims:
                    raise EurostatPayloadError(batch.object, "bulk file pieces differ in their dimensions")
                if updated:
                    frame["source_updated_at"] = f"{updated}T00:00:00+00:00"
                out = to_raw_rows(frame, batch.batch_id)
                for d in dims:
                    if d != "geo":
                        out[d] = frame[d].to_numpy()
                    profile.setdefault(d, set()).update(frame[d].dropna().unique().tolist())
                for col in ("time", "obs_status", "conf_status"):
                    profile.setdefault(col, set()).update(frame[col].dropna().unique().tolist())
                rows += copy_frame(cur, name, out, schema=STAGING_SCHEMA)
            if not dims:  # nothing selected: an empty partition is published all the same
                _create(cur, target, [], batch)
    except EurostatPayloadError as exc:
        code = "too_large" if exc.kind == "too_large" else "not_data"
        raise BatchRejected([{"code": code, "message": str(exc), "file": batch.object}]) from None
    finally:
        conn.close()
    log.info("eurostat %s: %s rows staged in %s.%s", batch.object, rows, STAGING_SCHEMA, name)
    staged = StagedTable(
        schema=STAGING_SCHEMA,
        name=name,
        rows=rows,
        suite=SUITE,
        profile=_profile_frame(batch.object, dims, profile),
        context={"dataset": batch.object, "dimensions": dims},
        extra_columns=[d for d in dims if d != "geo"],
    )
    return Prepared(tables={}, checks=[], partition=partition, staged=staged)


def _create(cur, target, dims: list[str], batch: Batch) -> None:
    from psycopg2 import sql

    from ingest.tasks.gate import BatchRejected

    clash = [d for d in dims if d != "geo" and d in dict(RAW_COLUMNS)]
    if clash:
        message = (
            f"{batch.object}: row -, column {clash[0]}: a dimension named like a column of raw.{TABLE}:"
            " cannot be staged (load it through the Statistics API: remove `bulk`)"
        )
        raise BatchRejected([{"code": "not_data", "message": message, "file": batch.object, "column": clash[0]}])
    columns = [(c, t) for c, t in RAW_COLUMNS] + [(d, "text") for d in dims if d != "geo"]
    cur.execute(
        sql.SQL("create table {} ({})").format(
            target,
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns),
        )
    )


def _profile_frame(dataset: str, dims: list[str], values: dict[str, set]) -> pd.DataFrame:
    """What the suite resolves on: the decoded table's columns and dtypes, holding the distinct values of the coded
    columns (never the rows)."""
    import numpy as np
    import pandas as pd

    from ingest.eurostat.frames import STR

    distinct = {c: sorted(map(str, v)) for c, v in values.items()}
    n = max([1, *map(len, distinct.values())])

    def text(col: str, vals: list[str]) -> pd.arrays.ArrowStringArray:
        return pd.array(vals + [None] * (n - len(vals)), dtype=STR)

    cols = {"dataset": text("dataset", [dataset])}
    for d in dims:
        cols[d] = text(d, distinct.get(d, []))
    cols["time"] = text("time", distinct.get("time", []))
    cols["value"] = np.full(n, np.nan)
    for c in ("obs_status", "conf_status"):
        cols[c] = text(c, distinct.get(c, []))
    cols["source_updated_at"] = text("source_updated_at", [])
    return pd.DataFrame(cols)


def _held_in_full(conn, batch: Batch) -> bool:
    """Raw's partition of this dataset holds rows, every one of this batch (a bulk batch is published whole)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) > 0 and bool_and(batch_id = %s) from raw.eurostat_observations where dataset = %s",
            (batch.batch_id, batch.object),
        )
        return bool(cur.fetchone()[0])
