"""Atomic, idempotent loads into ``raw`` with COPY.

A batch replaces the rows of its partition (e.g. one Eurostat dataset, one survey file) in one transaction:
delete the partition, COPY the new rows, commit. Loading the same batch twice leaves the same rows; a crash
mid-COPY rolls back and leaves the previous rows. A transaction-level advisory lock per partition serialises
concurrent loads of the same partition (nightly run and backfill).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import pandas as pd
from psycopg2 import sql


def copy_frame(cur, table: str, frame: pd.DataFrame, schema: str = "raw") -> int:
    """COPY a DataFrame into schema.table (columns by name); return the row count.

    The CSV is written by Arrow's multi-threaded writer (3× faster than pandas' ``to_csv``, see
    bench/RESULTS.md): NULL is an unquoted empty field, an empty string is ``""``, floats are written as their
    shortest round-trip repr so numerics arrive exactly as decoded.
    """
    if frame.empty:
        return 0
    stmt = sql.SQL("copy {}.{} ({}) from stdin with (format csv)").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    )
    cur.copy_expert(stmt.as_string(cur), io.BytesIO(_csv_bytes(frame)))
    return len(frame)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed-type object columns: let pandas stringify them
        buf = io.StringIO()
        frame.to_csv(buf, header=False, index=False, na_rep="", lineterminator="\n")
        return buf.getvalue().encode()
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def partition_lock(cur, table: str, partition: Mapping[str, object]) -> None:
    """Serialise writers of one partition until the transaction ends."""
    key = f"{table}|" + "|".join(f"{k}={v}" for k, v in sorted(partition.items()))
    cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def delete_partition(cur, table: str, partition: Mapping[str, object], schema: str = "raw") -> int:
    where = sql.SQL(" and ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in partition)
    cur.execute(
        sql.SQL("delete from {}.{} where {}").format(sql.Identifier(schema), sql.Identifier(table), where),
        list(partition.values()),
    )
    return cur.rowcount


def replace_partitions(
    conn,
    tables: Mapping[str, pd.DataFrame],
    partition: Mapping[str, object],
    schema: str = "raw",
    then: Callable[[object, dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """Replace one partition in several tables atomically; ``then(cursor, loaded)`` runs in the same
    transaction (audit bookkeeping). Return rows loaded per table."""
    loaded: dict[str, int] = {}
    with conn, conn.cursor() as cur:
        for table in sorted(tables):
            partition_lock(cur, table, partition)
        for table, frame in tables.items():
            delete_partition(cur, table, partition, schema)
            loaded[table] = copy_frame(cur, table, frame, schema)
        if then is not None:
            then(cur, loaded)
    return loaded


def publish_staged(
    conn,
    staged: Mapping[str, object],
    partition: Mapping[str, object],
    then: Callable[[object, dict[str, int]], None] | None = None,
    rows: int = 0,
) -> None:
    """Publish a validated staged table (write-audit-publish) as its partition of a partitioned raw table, in one
    transaction with ``then(cursor, loaded)``: its checked-only columns dropped (no rewrite), then
    ``raw.publish_partition`` (migration 0014) swaps it in for the partition's current rows. ``staged`` is the
    batch's record of it (``staged.StagedTable.meta`` plus ``table``, the raw table)."""
    ((_column, value),) = partition.items()  # the function finds the parent's partition column itself
    table = str(staged.get("table") or "eurostat_observations")
    with conn, conn.cursor() as cur:
        # the partition's primary key is built by the attach: a sort of every row, in the server's memory
        cur.execute("set local maintenance_work_mem = '512MB'")
        target = sql.Identifier(str(staged["schema"]), str(staged["name"]))
        drops = [sql.SQL("drop column {}").format(sql.Identifier(c)) for c in staged.get("drop_columns") or []]
        if drops:
            cur.execute(sql.SQL("alter table {} ").format(target) + sql.SQL(", ").join(drops))
        cur.execute("select raw.publish_partition(%s, %s, %s)", (table, str(value), str(staged["name"])))
        if then is not None:
            then(cur, {table: rows})
