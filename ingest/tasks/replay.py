"""Backfill mode: rebuild what was known on a logical date from the raw archive, without downloading.

For each source object (Eurostat dataset, survey file) the latest receipt on or before the logical date is
registered again as a received batch; validation and load then run exactly as in a nightly run, decoding
from the archive. Loads replace partitions atomically under per-partition advisory locks, so a backfill
overlapping a nightly run cannot duplicate or lose rows.
"""

from __future__ import annotations

from ingest.archive import Archive
from ingest.tasks.common import RunContext, log, receipts_as_of, record_batch, record_check
from ingest.warehouse import connect


def plan(ctx: RunContext, source: str) -> list[str]:
    """Objects with an archived receipt on or before the logical date (recorded as 'replay' decisions)."""
    conn = connect()
    with conn, conn.cursor() as cur:
        batches = receipts_as_of(cur, ctx, source)
        for b in batches:
            record_check(cur, ctx, source, b.object, "replay",
                         f"backfill {ctx.logical_date}: replaying batch {b.batch_id} from the archive")
    conn.close()
    return [b.object for b in batches]


def register(ctx: RunContext, source: str, objects: list[str] | None = None) -> dict:
    """Register the receipts to replay as received batches of this run (their bytes must be in the archive)."""
    archive = Archive()
    conn = connect()
    n = 0
    with conn, conn.cursor() as cur:
        for batch in receipts_as_of(cur, ctx, source):
            if objects is not None and batch.object not in objects:
                continue
            cur.execute("select status from audit.batches where batch_id = %s", (batch.batch_id,))
            status = cur.fetchone()
            if status and status[0] == "quarantined":  # replayed once it is released (ss4gl quarantine release)
                log.info("%s %s: quarantined, not replayed", source, batch.object)
                continue
            for sha in batch.sha256:
                if not archive.path_of(sha).exists():
                    raise FileNotFoundError(f"{source} {batch.object}: archived object {sha} is missing from"
                                            f" {archive.root}; rerun the backfill with --refetch")
            record_batch(cur, ctx, batch)
            n += 1
    conn.close()
    log.info("%s: replaying %s archived batch(es) known on %s", source, n, ctx.logical_date)
    return {"replayed": n}
