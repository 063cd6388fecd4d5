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
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ingest.archive import Archive
from ingest.config import Catalogue, load_catalogue
from ingest.tasks.common import Batch, RunContext, log
from ingest.warehouse import LOADER, connect

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SOURCE = "eurostat"
TABLE = "eurostat_observations"
STAGING_SCHEMA = "raw_staging"
SUITE = "eurostat_observations"
KEY = ("dataset", "series_key", "geo", "time")  # raw.eurostat_observations' primary key
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


def extract(ctx: RunContext, code: str, archive: Archive, client, catalogue: Catalogue | None = None):
    """Download ``code``'s bulk file with ``client`` (an EurostatClient) into the archive (streamed; every body
    recorded in audit.fetches, those of error answers too); its BulkReceived."""
    from ingest.tasks.common import record_fetch

    catalogue = catalogue or load_catalogue()
    limit = int(catalogue.limits("eurostat")["max_bulk_bytes"])

    def recorded(got) -> None:  # every body stored, an error answer's too
        with connect(role=LOADER) as conn, conn.cursor() as cur:
            record_fetch(cur, ctx, SOURCE, code, got.url, got.status, got.sha256, got.size)
        conn.close()

    return client.fetch_bulk(code, archive.put_stream, limit, on_stored=recorded)


def check_received(code: str, got, archive: Archive) -> None:
    """Raise EurostatPayloadError when a stored bulk body is cut at the size limit or is not SDMX TSV (an error page,
    an error JSON, an asynchronous envelope): only its head is read."""
    from ingest.eurostat.bulk import iter_tables
    from ingest.eurostat.errors import EurostatPayloadError

    limits = load_catalogue().limits("eurostat")
    if got.cut:
        raise EurostatPayloadError(
            code, f"body exceeds {limits['max_bulk_bytes']} bytes (stopped reading)", kind="too_large"
        )
    sha, status = got.sha256, got.status
    with archive.open(sha) as fh:
        try:
            next(iter(iter_tables(fh, code, max_bytes=1 << 20, max_ratio=float(limits["max_compression_ratio"]))))
        except StopIteration:
            pass
        except EurostatPayloadError as exc:
            if exc.kind != "too_large":  # a real bulk file is bigger than the head read here
                raise
    if status >= 400:
        raise EurostatPayloadError(code, f"HTTP {status} for the bulk file", kind="error", status=status)


def selection(catalogue: Catalogue, code: str) -> dict:
    """Which rows of the bulk file a dataset loads (those the Statistics API would answer for its catalogue entry):
    recorded with the batch at extract, so that a replay selects what the night did, whatever the catalogue says
    since."""
    ds = catalogue.dataset(code)
    return {"filters": ds.filters, "geo": catalogue.geo_codes(ds), "since": catalogue.eurostat.get("since_time_period")}


def staged_name(batch: Batch) -> str:
    """A new staging table for a batch (two runs staging the same content never share one)."""
    return f"{TABLE}_{hashlib.sha256(batch.batch_id.encode()).hexdigest()[:12]}_{uuid.uuid4().hex[:12]}"


def stage(batch: Batch, catalogue: Catalogue | None = None):
    """Write a bulk batch into its staging table and describe the check to run there (a ``gate.Prepared`` whose
    ``staged`` is set); a batch raw already holds in full is not staged again (``tables`` empty, nothing staged).

    One COPY streams every piece: a thread decodes piece k+1 (:func:`_rows_csv`) while the warehouse stores piece k,
    at most ``_QUEUED`` pieces apart (bounded memory). Anything that is not data quarantines the batch in one line and
    leaves no staging table (its transaction is rolled back)."""
    from psycopg2 import sql

    from ingest.eurostat.columns import dimension_columns
    from ingest.eurostat.errors import EurostatPayloadError
    from ingest.tasks.gate import BatchRejected, Prepared
    from ingest.tasks.staged import StagedTable

    catalogue = catalogue or load_catalogue()
    partition = {"dataset": batch.object}
    conn = connect(role=LOADER)
    name = staged_name(batch)
    profile: dict[str, set] = {}
    try:
        held = _held_in_full(conn, batch)
        if held:
            log.info("eurostat %s: raw holds this bulk batch already (%s rows): not staged again", batch.object, held)
            return Prepared(tables={}, checks=[], partition=partition, held_rows=held)
        _drop_abandoned(conn)
        with conn, conn.cursor() as cur, Archive().open(batch.sha256[0]) as fh:
            pieces = _pieces(fh, batch, catalogue)
            first = next(pieces, None)
            if first is None:  # the Statistics API answers such a request with an error, not with an empty table
                raise EurostatPayloadError(
                    batch.object, "the catalogue entry's filters, geo and first period select no row of the bulk file"
                )
            dims = dimension_columns(first.column_names)
            _create(cur, sql.Identifier(STAGING_SCHEMA, name), dims, batch)
            columns = [c for c, _t in RAW_COLUMNS] + [d for d in dims if d != "geo"]
            # FREEZE (the table is made in this transaction): rows stored frozen, so the validation's scans that follow
            # do not rewrite every page to set its hint bits
            copy = sql.SQL("copy {} ({}) from stdin with (format csv, freeze)").format(
                sql.Identifier(STAGING_SCHEMA, name), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            rows = _stream(cur, copy.as_string(cur), first, pieces, batch, dims, profile)
    except EurostatPayloadError as exc:
        code = "too_large" if exc.kind == "too_large" else "not_data"
        raise BatchRejected([{"code": code, "message": str(exc), "file": batch.object}]) from None
    finally:
        conn.close()
        _release_memory()
    log.info("eurostat %s: %s rows staged in %s.%s", batch.object, rows, STAGING_SCHEMA, name)
    staged = StagedTable(
        schema=STAGING_SCHEMA,
        name=name,
        rows=rows,
        suite=SUITE,
        profile=_profile_frame(batch.object, dims, profile),
        context={"dataset": batch.object, "dimensions": dims},
        extra_columns=[d for d in dims if d != "geo"],
        key=list(KEY),
    )
    return Prepared(tables={}, checks=[], partition=partition, staged=staged)


ABANDONED_AFTER = "1 day"  # a staging table older than this that no run is about to publish is left over


def _drop_abandoned(conn) -> None:
    """Drop staging tables left by runs that stopped between validate and load (a crash, the warehouse gone):
    older than ``ABANDONED_AFTER`` (their comment holds when they were made) and named by no batch validated within
    that time (a run that stopped leaves its batches 'validated')."""
    from psycopg2 import sql

    with conn, conn.cursor() as cur:
        cur.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind = 'r'"
            " and coalesce(substring(obj_description(c.oid, 'pg_class') from 'staged at (.*)$')::timestamptz,"
            " '-infinity') < now() - %s::interval"
            " and c.relname not in (select meta->'staged'->>'name' from audit.run_batches"
            " where status = 'validated' and meta ? 'staged' and updated_at > now() - %s::interval)",
            (STAGING_SCHEMA, ABANDONED_AFTER, ABANDONED_AFTER),
        )
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(STAGING_SCHEMA, name)))
            log.warning("%s.%s: staging table of an abandoned run dropped", STAGING_SCHEMA, name)


def _release_memory() -> None:
    """Hand the pieces' memory back to the system before the validation (Arrow's allocator keeps freed blocks)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _pieces(fh, batch: Batch, catalogue: Catalogue) -> Iterator[pa.Table]:
    """The decoded pieces of the archived file, each cut to the rows the catalogue entry selects (empty ones left
    out)."""
    from ingest.eurostat import bulk

    limits = catalogue.limits("eurostat")
    chosen = batch.meta.get("selection") or selection(catalogue, batch.object)
    filters, geo, since = chosen["filters"], chosen["geo"], chosen["since"]
    for piece in bulk.iter_tables(
        fh,
        batch.object,
        max_bytes=int(limits["max_bulk_decompressed_bytes"]),
        max_ratio=float(limits["max_compression_ratio"]),
        block_bytes=bulk.BLOCK_BYTES,
    ):
        table = bulk.select(piece, filters, geo, since, dataset=batch.object)
        if table.num_rows:
            yield table


_QUEUED = 2  # decoded pieces waiting for the COPY at most


def _stream(cur, copy: str, first, pieces, batch: Batch, dims: list[str], profile: dict[str, set]) -> int:
    """COPY every piece (as CSV) through one statement, fed by a decoding thread; the rows copied."""
    import queue
    import threading

    from ingest.eurostat.columns import dimension_columns
    from ingest.eurostat.errors import EurostatPayloadError

    if first is None:
        return 0
    chunks: queue.Queue = queue.Queue(maxsize=_QUEUED)
    counted, failed = [0], []
    stop = threading.Event()

    def produce() -> None:
        try:
            table = first
            while table is not None and not stop.is_set():
                if dimension_columns(table.column_names) != dims:
                    raise EurostatPayloadError(batch.object, "bulk file pieces differ in their dimensions")
                data = _rows_csv(table, batch, dims, profile)
                counted[0] += table.num_rows
                chunks.put(data)
                table = next(pieces, None)
            chunks.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the COPY side, raised there
            failed.append(exc)
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="bulk-decode", daemon=True)
    worker.start()
    try:
        cur.copy_expert(copy, _QueueReader(chunks), size=1 << 20)
    except Exception:
        if failed:  # the COPY was cancelled because the file is not data: say why (the transaction rolls back)
            raise failed[0] from None
        raise
    finally:
        stop.set()
        while worker.is_alive():  # let a producer blocked on a full queue finish
            try:
                chunks.get_nowait()
            except queue.Empty:
                worker.join(0.05)
    return counted[0]


class _QueueReader:
    """A file object COPY reads from: the CSV pieces a thread puts in a queue (None ends it, an exception is
    raised here)."""

    def __init__(self, chunks) -> None:
        self.chunks, self.buffer, self.done = chunks, memoryview(b""), False

    def read(self, size: int = -1) -> bytes:
        while not self.buffer and not self.done:
            item = self.chunks.get()
            if item is None:
                self.done = True
            elif isinstance(item, BaseException):
                self.done = True
                raise item
            else:
                self.buffer = memoryview(item)
        n = len(self.buffer) if size is None or size < 0 else min(size, len(self.buffer))
        out, self.buffer = bytes(self.buffer[:n]), self.buffer[n:]
        return out

    readline = read


def _rows_csv(table: pa.Table, batch: Batch, dims: list[str], profile: dict[str, set]) -> bytes:
    """A piece as CSV rows of the staging table (raw columns, then the non-geo dimensions), written by Arrow: the
    series key and dims JSON are made once per series of the piece (from the dimension codes) and taken per row. The
    same values as ``tasks.eurostat.to_raw_rows`` (tested); the coded columns' distinct values are added to
    ``profile``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    others = [d for d in dims if d != "geo"]
    n = table.num_rows
    coded = {c: _coded(table.column(c)) for c in (*dims, "time", "obs_status", "conf_status")}
    if others:
        codes = [coded[d].indices.to_numpy(zero_copy_only=False).astype(np.int64) for d in others]
        names = [coded[d].dictionary.to_pylist() for d in others]
        try:
            flat = np.ravel_multi_index(codes, [max(len(v), 1) for v in names])
            uniques, at = np.unique(flat, return_inverse=True)
            combos = np.unravel_index(uniques, [max(len(v), 1) for v in names])
        except ValueError:  # more code combinations than an int64 counts: the rows' code tuples themselves
            rows, at = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
            combos = tuple(rows.T)
        series = [[names[j][c] for c in combo] for j, combo in enumerate(combos)]
        values = list(zip(*series, strict=True))
        keys = [",".join(f"{d}={v}" for d, v in zip(others, u, strict=True)) for u in values]
        docs = [json.dumps(dict(zip(others, u, strict=True)), separators=(",", ":")) for u in values]
        at = pa.array(at.ravel())
        series_key, dims_json = pa.array(keys).take(at), pa.array(docs).take(at)
    else:
        series_key, dims_json = pa.repeat("", n), pa.repeat("{}", n)
    updated = batch.meta.get("toc_last_update")
    columns = {
        "dataset": table.column("dataset"),
        "series_key": series_key,
        "dims": dims_json,
        "geo": table.column("geo") if "geo" in table.column_names else pa.nulls(n, pa.string()),
        "time": table.column("time"),
        "value": table.column("value"),  # null where the cell has only a flag
        "obs_status": table.column("obs_status"),
        "conf_status": table.column("conf_status"),
        "source_updated_at": pa.repeat(f"{updated}T00:00:00+00:00", n) if updated else pa.nulls(n, pa.string()),
        "batch_id": pa.repeat(batch.batch_id, n),
    }
    columns.update({d: table.column(d) for d in others})
    for col, arr in coded.items():
        held = profile.setdefault(col, set())
        present = np.unique(arr.indices.drop_null().to_numpy(zero_copy_only=False))
        held.update(arr.dictionary.take(pa.array(present, pa.int64())).to_pylist())
        if arr.null_count:
            held.add(None)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(pa.table(columns), sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def _coded(column) -> pa.DictionaryArray:
    """A text column of a decoded piece as one dictionary array (plain text is encoded)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)


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
    cur.execute(
        sql.SQL("comment on table {} is {}").format(
            target, sql.Literal(f"{batch.batch_id} staged at {datetime.now(UTC).isoformat()}")
        )
    )


def _profile_frame(dataset: str, dims: list[str], values: dict[str, set]) -> pd.DataFrame:
    """What the suite resolves on: the decoded table's columns and dtypes, holding the distinct values of the coded
    columns (never the rows)."""
    import numpy as np
    import pandas as pd

    from ingest.eurostat.frames import STR

    distinct = {
        c: sorted(str(x) for x in v if x is not None) + ([None] if None in v else []) for c, v in values.items()
    }
    n = max([1, *map(len, distinct.values())])

    def text(col: str, vals: list[str | None]) -> pd.arrays.ArrowStringArray:
        # padded with its own first value: a null in the profile is a null in the data
        return pd.array(vals + [vals[0] if vals else None] * (n - len(vals)), dtype=STR)

    cols = {"dataset": text("dataset", [dataset])}
    for d in dims:
        cols[d] = text(d, distinct.get(d, []))
    cols["time"] = text("time", distinct.get("time", []))
    cols["value"] = np.full(n, np.nan)
    for c in ("obs_status", "conf_status"):
        cols[c] = text(c, distinct.get(c, []))
    cols["source_updated_at"] = text("source_updated_at", [])
    return pd.DataFrame(cols)


def _held_in_full(conn, batch: Batch) -> int:
    """The rows of raw's partition of this dataset when it holds rows, every one of this batch (a bulk batch is
    published whole) selected as this batch selects them (the catalogue entry may have changed, the file not),
    else 0."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "select coalesce((select meta->'selection' = %s::jsonb from audit.batches"
            " where batch_id = %s and status = 'loaded'), false)",
            (json.dumps(batch.meta.get("selection")), batch.batch_id),
        )
        if not cur.fetchone()[0]:
            return 0
        cur.execute(
            "select count(*), coalesce(bool_and(batch_id = %s), false) from raw.eurostat_observations"
            " where dataset = %s",
            (batch.batch_id, batch.object),
        )
        rows, all_this = cur.fetchone()
        return int(rows) if all_this else 0
