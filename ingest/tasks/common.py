"""What every source shares: the run context, batch bookkeeping in ``audit``, staging of validated batches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from psycopg2 import sql

from ingest.storage import default_storage
from ingest.warehouse import storable

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ss4gl")


@dataclass(frozen=True)
class RunContext:
    run_id: str
    logical_date: str  # YYYY-MM-DD
    # "nightly": pull sources. "backfill": replay, per object, the latest archived receipt on or before
    # logical_date (no download) unless refetch is set.
    mode: str = "nightly"
    refetch: bool = False
    rebuild: bool = False  # build every dbt node even when nothing changed (DAG param / --rebuild)

    @property
    def replay(self) -> bool:
        return self.mode == "backfill" and not self.refetch

    @classmethod
    def from_airflow(cls, context: dict) -> RunContext:
        dag_run = context.get("dag_run")
        ld = context.get("logical_date") or context.get("data_interval_end") or dag_run.run_after
        conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
        params = context.get("params") or {}  # the DAG's params (trigger form), conf overrides them
        run_type = str(getattr(dag_run, "run_type", "") or "").lower()
        mode = "backfill" if ("backfill" in run_type or conf.get("mode") == "backfill") else "nightly"
        return cls(
            run_id=context["run_id"],
            logical_date=ld.date().isoformat(),
            mode=mode,
            refetch=bool(conf.get("refetch", params.get("refetch", False))),
            rebuild=bool(conf.get("rebuild", params.get("rebuild", False))),
        )


@dataclass
class Batch:
    """One unit of validate-then-load: a Eurostat dataset payload or one survey file (JSON-serialisable)."""

    source: str
    object: str  # dataset code or inbox path
    sha256: list[str]
    meta: dict = field(default_factory=dict)
    status: str = "received"
    reason: str | None = None
    rows: int | None = None

    @property
    def batch_id(self) -> str:
        digest = hashlib.sha256("".join(self.sha256).encode()).hexdigest()[:16]
        return f"{self.source}:{self.object}:{digest}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Batch:
        return cls(**d)


def _stage_key(batch: Batch, table: str, ctx: RunContext) -> tuple[str, str, str]:
    """Where a validated batch waits for its load (in the storage: another worker may load it): per run, so that
    two runs handling the same content at once (a nightly beside a backfill) never load or delete each other's
    staged rows."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", batch.batch_id)
    return "staging", re.sub(r"[^A-Za-z0-9_.-]+", "_", ctx.run_id), f"{safe}__{table}.parquet"


def stage_write(frame: pd.DataFrame, batch: Batch, table: str, ctx: RunContext) -> None:
    with default_storage().open(*_stage_key(batch, table, ctx), mode="wb") as fh:
        frame.to_parquet(fh, index=False)


def stage_read(batch: Batch, table: str, ctx: RunContext) -> pd.DataFrame:
    import pandas as pd

    with default_storage().open(*_stage_key(batch, table, ctx), mode="rb") as fh:
        return pd.read_parquet(fh)


def stage_remove(batch: Batch, table: str, ctx: RunContext) -> None:
    default_storage().remove(*_stage_key(batch, table, ctx))


def stage_done(ctx: RunContext) -> None:
    """Drop the run's local staging folder once every batch left it (object storage has no folders to drop)."""
    folder = default_storage().local_path(*_stage_key(Batch("-", "-", []), "-", ctx)[:2])
    if folder is not None:
        with contextlib.suppress(OSError):
            folder.rmdir()


def record_fetch(
    cur, ctx: RunContext, source: str, obj: str, url: str | None, status: int | None, sha: str, size: int
) -> None:
    cur.execute(
        "insert into audit.fetches (run_id, logical_date, source, object, url, http_status, sha256, size_bytes)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (ctx.run_id, ctx.logical_date, source, obj, url, status, sha, size),
    )


def record_check(
    cur,
    ctx: RunContext,
    source: str,
    obj: str,
    decision: str,
    reason: str,
    toc_last_update=None,
    source_updated_at=None,
) -> None:
    cur.execute(
        "insert into audit.dataset_checks (run_id, logical_date, source, object, decision, reason,"
        " toc_last_update, source_updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (run_id, source, object) do update set decision = excluded.decision,"
        " reason = excluded.reason, toc_last_update = excluded.toc_last_update,"
        " source_updated_at = excluded.source_updated_at, checked_at = now()",
        (ctx.run_id, ctx.logical_date, source, obj, decision, reason, toc_last_update, source_updated_at),
    )


def lock_batch(cur, batch_id: str) -> None:
    """Serialise, until the transaction ends, the runs recording the same batch (its rows in audit.batches and
    audit.quarantine). Taken first by record_batch and record_quarantine, so their row locks come in one order."""
    cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"ss4gl.batch|{batch_id}",))


# Outcomes: a status a run's hand-over states (received, validated) never overwrites in audit.batches.
OUTCOMES = ("loaded", "quarantined")


def record_batch(cur, ctx: RunContext, batch: Batch, rows_loaded: int | None = None) -> None:
    """Record a batch's status in this run, in the caller's transaction. Two tables, two meanings:

    * ``audit.run_batches`` (run_id, batch_id): this run's own bookkeeping: status, reason, rows and meta
      (partition, tables) handed from task to task (``run_batches``) and counted by the run summary. Per run, so
      two runs handling the same content at the same time (a nightly beside a backfill, two backfill dates)
      never take, overwrite or lose each other's batches.
    * ``audit.batches`` (batch_id): the content's latest outcome, whichever run recorded it (``run_id`` is that
      run). What everything else reads: the surveys' "already processed" set, quarantine list/release, the
      dashboard, dbt, the nightly reconciliation. A run re-registering or re-validating content another run
      loaded or quarantined (a replay) leaves that outcome in place until it records an outcome of its own, so a
      replay in one run never makes the content look new, or its partition unknown, to another.
    """
    lock_batch(cur, batch.batch_id)
    row = (
        batch.batch_id,
        batch.source,
        batch.object,
        batch.sha256,
        ctx.run_id,
        ctx.logical_date,
        batch.status,
        storable(batch.reason),
        batch.rows,
        rows_loaded,
        json.dumps(storable(batch.meta), default=str),
    )
    cur.execute(
        "insert into audit.run_batches (batch_id, source, object, sha256, run_id, logical_date, status, reason,"
        " rows_parsed, rows_loaded, meta) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (run_id, batch_id) do update set status = excluded.status, reason = excluded.reason,"
        " logical_date = excluded.logical_date, rows_parsed = excluded.rows_parsed,"
        " rows_loaded = coalesce(excluded.rows_loaded, audit.run_batches.rows_loaded),"
        " meta = excluded.meta, updated_at = now()",
        row,
    )
    cur.execute(
        "insert into audit.batches (batch_id, source, object, sha256, run_id, logical_date, status, reason,"
        " rows_parsed, rows_loaded, meta) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (batch_id) do update set status = excluded.status, reason = excluded.reason,"
        " run_id = excluded.run_id, logical_date = excluded.logical_date,"
        " rows_parsed = excluded.rows_parsed, rows_loaded = coalesce(excluded.rows_loaded, audit.batches.rows_loaded),"
        " meta = excluded.meta, updated_at = now()"
        " where excluded.status = any(%s) or audit.batches.status <> all(%s)",
        (*row, list(OUTCOMES), list(OUTCOMES)),
    )


def record_quarantine(cur, batch: Batch, problems: list[dict]) -> None:
    """Store machine-readable reasons (code, severity, message, file, row, column, expected, found): the latest
    ones per batch (two runs recording the same batch replace each other's reasons, one after the other)."""
    lock_batch(cur, batch.batch_id)
    cur.execute("delete from audit.quarantine where batch_id = %s", (batch.batch_id,))
    for p in problems:
        cur.execute(
            "insert into audit.quarantine (batch_id, source, object, code, severity, message, file, row_number,"
            " column_name, expected, found) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                batch.batch_id,
                batch.source,
                batch.object,
                p.get("code", "invalid"),
                p.get("severity", "error"),
                storable(p["message"]),
                storable(p.get("file")),
                p.get("row"),
                storable(p.get("column")),
                storable(_text(p.get("expected"))),
                storable(_text(p.get("found"))),
            ),
        )


def _text(v) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, default=str)


# Lateral join ``a``: the latest receipt of batch ``b`` on or before a logical date (the first parameter); its
# (logical_date, received_at) is a batch's arrival, the order in which loads replace a partition.
LATEST_RECEIPT = sql.SQL(
    "lateral (select r.logical_date, r.received_at from audit.batch_receipts r"
    " where r.batch_id = b.batch_id and r.logical_date <= %s"
    " order by r.logical_date desc, r.receipt_id desc limit 1) a on true"
)


def run_batches(cur, ctx: RunContext, source: str, status: str) -> list[Batch]:
    """Batches of this run and source in a given status in this run's own bookkeeping (``audit.run_batches``,
    see record_batch: another run recording the same content changes nothing here), in arrival order: by
    their latest receipt on or before the logical date (its logical date, then when it was received), then by
    content hash. Loads follow this order, so of two files replacing one partition the later arrival wins, in
    a nightly run and in any backfill alike (never the file name)."""
    cur.execute(
        sql.SQL(
            "select b.source, b.object, b.sha256, b.meta, b.status, b.reason, b.rows_parsed"
            " from audit.run_batches b"
            " left join {} where b.run_id = %s and b.source = %s and b.status = %s"
            " order by a.logical_date nulls first, a.received_at nulls first, b.sha256, b.object"
        ).format(LATEST_RECEIPT),
        (ctx.logical_date, ctx.run_id, source, status),
    )
    return [
        Batch(source=s, object=o, sha256=list(sha), meta=m or {}, status=st, reason=r, rows=n)
        for s, o, sha, m, st, r, n in cur.fetchall()
    ]


def record_receipt(cur, ctx: RunContext, batch: Batch) -> None:
    """Append-only: this content was received for this logical date (what backfills replay)."""
    cur.execute(
        "insert into audit.batch_receipts (batch_id, source, object, sha256, meta, run_id, logical_date)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        (
            batch.batch_id,
            batch.source,
            batch.object,
            batch.sha256,
            json.dumps(batch.meta, default=str),
            ctx.run_id,
            ctx.logical_date,
        ),
    )


def receipts_as_of(cur, ctx: RunContext, source: str) -> list[Batch]:
    """Per object, the latest receipt on or before the run's logical date."""
    cur.execute(
        "select distinct on (object) object, sha256, meta from audit.batch_receipts"
        " where source = %s and logical_date <= %s order by object, logical_date desc, receipt_id desc",
        (source, ctx.logical_date),
    )
    return [Batch(source=source, object=o, sha256=list(sha), meta=m or {}) for o, sha, m in cur.fetchall()]
