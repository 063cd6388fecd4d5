"""Batches from the raw archive: archived receipts registered again as received batches of this run.

Backfill mode (``plan``, ``register``): rebuild what was known on a logical date without downloading. For each
source object (Eurostat dataset, survey file) the latest receipt on or before the logical date is registered
again as a received batch; validation and load then run exactly as in a nightly run, decoding from the archive.
Loads replace partitions atomically under per-partition advisory locks, so a backfill overlapping a nightly run
cannot duplicate or lose rows.

Nightly mode (``reconcile``): each partition of raw that does not hold its current batch gets it back from the
archive the same way.

(Not to be confused with :mod:`ingest.eurostat.replay`, the loopback Eurostat look-alike server.)
"""

from __future__ import annotations

from ingest.archive import Archive
from ingest.tasks.common import (
    LATEST_RECEIPT,
    Batch,
    RunContext,
    log,
    receipts_as_of,
    record_batch,
    record_check,
)
from ingest.warehouse import LOADER, connect


def plan(ctx: RunContext, source: str) -> list[str]:
    """Objects with an archived receipt on or before the logical date (recorded as 'replay' decisions)."""
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        batches = receipts_as_of(cur, ctx, source)
        for b in batches:
            record_check(
                cur,
                ctx,
                source,
                b.object,
                "replay",
                f"backfill {ctx.logical_date}: replaying batch {b.batch_id} from the archive",
            )
    conn.close()
    return [b.object for b in batches]


def register(ctx: RunContext, source: str, objects: list[str] | None = None) -> dict:
    """Register the receipts to replay as received batches of this run (their bytes must be in the archive)."""
    archive = Archive()
    conn = connect(role=LOADER)
    n = 0
    with conn, conn.cursor() as cur:
        # By object (then content), as surveys.extract meets inbox files: every run takes the batch locks of one
        # transaction (record_batch) in that order, so two runs recording the same batches never wait in a cycle.
        for batch in sorted(receipts_as_of(cur, ctx, source), key=lambda b: (b.object, b.batch_id)):
            if objects is not None and batch.object not in objects:
                continue
            cur.execute("select status from audit.batches where batch_id = %s", (batch.batch_id,))
            status = cur.fetchone()
            if status and status[0] == "quarantined":  # replayed once it is released (ss4gl quarantine release)
                log.info("%s %s: quarantined, not replayed", source, batch.object)
                continue
            for sha in batch.sha256:
                if not archive.has(sha):
                    raise FileNotFoundError(
                        f"{source} {batch.object}: archived object {sha} is missing from"
                        f" {archive.root}; rerun the backfill with --refetch"
                    )
            record_batch(cur, ctx, batch)
            n += 1
    conn.close()
    log.info("%s: replaying %s archived batch(es) known on %s", source, n, ctx.logical_date)
    return {"replayed": n}


def reconcile(ctx: RunContext, source: str) -> dict:
    """Nightly self-repair of raw: per partition, the batch a fresh replay of every receipt up to the logical date
    would leave there (of the batches that loaded, the one with the latest receipt: logical date, then arrival,
    then content hash); each one missing from raw (a backfill of an earlier date put an older one back, a table
    was emptied by hand) is registered as a received batch of this run and replayed from the archive.
    """
    from psycopg2 import sql

    archive = Archive()
    conn = connect(role=LOADER)
    replayed: list[str] = []
    with conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "select distinct on (b.meta->'partition') b.object, b.sha256, b.meta, b.rows_parsed, b.batch_id"
                " from audit.batches b join {}"
                " where b.source = %s and b.status = 'loaded' and b.meta ? 'partition' and b.meta ? 'tables'"
                " order by b.meta->'partition', a.logical_date desc, a.received_at desc, b.sha256 desc"
            ).format(LATEST_RECEIPT),
            (ctx.logical_date, source),
        )
        expected = cur.fetchall()
        cur.execute("select batch_id from audit.run_batches where run_id = %s and source = %s", (ctx.run_id, source))
        this_run = {r[0] for r in cur.fetchall()}
        for obj, sha256, meta, rows, batch_id in sorted(expected, key=lambda e: (e[0], e[4])):  # lock order: register
            if not rows or batch_id in this_run:
                continue
            tables = meta["tables"] or (["eurostat_observations"] if meta.get("bulk") else [])  # bulk: staged
            if not tables:
                continue
            where = sql.SQL("").join(  # the partition's key too: only its rows are read (raw.eurostat_observations
                sql.SQL(" and {} = {}").format(sql.Identifier(k), sql.Placeholder(f"p{i}"))  # is partitioned by it)
                for i, k in enumerate(meta.get("partition") or {})
            )
            present = sql.SQL(" union all ").join(
                sql.SQL("(select 1 from raw.{} where batch_id = %(b)s{} limit 1)").format(sql.Identifier(t), where)
                for t in tables
            )
            values = {f"p{i}": v for i, v in enumerate((meta.get("partition") or {}).values())}
            cur.execute(sql.SQL("select exists ({})").format(present), {"b": batch_id, **values})
            if cur.fetchone()[0] or not all(archive.has(sha) for sha in sha256):
                continue
            batch = Batch(source=source, object=obj, sha256=list(sha256), meta=meta)
            record_batch(cur, ctx, batch)
            record_check(
                cur,
                ctx,
                source,
                obj,
                "replay",
                f"raw does not hold the current batch {batch_id} (a backfill of an earlier date, or a"
                " repair): replayed from the archive",
            )
            replayed.append(obj)
    conn.close()
    if replayed:
        log.warning(
            "%s: %s partition(s) did not hold their current batch; replaying: %s",
            source,
            len(replayed),
            ", ".join(replayed),
        )
    return {"reconciled": len(replayed)}
