"""Validate-then-load for every source: GX validation of parsed batches, quarantine, atomic COPY into raw."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ingest.config import EXPECTATIONS_DIR
from ingest.tasks.common import (
    Batch,
    RunContext,
    log,
    record_batch,
    record_quarantine,
    run_batches,
    stage_path,
)
from ingest.warehouse import connect


class BatchRejected(Exception):
    """A batch cannot be parsed; carries machine-readable problems (dicts with at least `message`)."""

    def __init__(self, problems: list[dict]):
        super().__init__(problems[0]["message"] if problems else "rejected")
        self.problems = problems


class ValidationFailed(RuntimeError):
    """Raised at the end of a validate task when batches were quarantined (after everything else is staged)."""


@dataclass
class Prepared:
    """A parsed batch: raw tables to load, GX checks to run, the partition a load replaces."""

    tables: dict[str, pd.DataFrame]
    checks: list[tuple[str, pd.DataFrame, dict]]  # (suite, frame, context)
    partition: dict[str, object]
    warnings: list[dict] = field(default_factory=list)


def validate(ctx: RunContext, source: str, prepare: Callable[[Batch], Prepared],
             on_quarantine: Callable[[Batch, list[dict]], None] | None = None, combine: bool = True) -> dict:
    """Parse and validate every received batch of this run; stage passing ones, quarantine the rest.

    With ``combine`` (small batches, e.g. survey files), the frames of one suite and context are validated
    together first; only when that combined validation fails is each batch validated on its own, so the
    verdicts stay per batch while GX's per-validation cost is paid once per group on a good night.
    """
    from ingest.validation import Validator, record

    conn = connect()
    with conn, conn.cursor() as cur:
        batches = run_batches(cur, ctx, source, "received")
    validator = Validator() if batches else None
    counts = {"validated": 0, "quarantined": 0, "rows": 0, "cached_verdicts": 0}
    failures: list[str] = []
    prepared: dict[str, Prepared | None] = {}
    problems: dict[str, list[dict]] = {b.batch_id: [] for b in batches}
    pending: list[tuple[Batch, str, pd.DataFrame, dict, tuple]] = []
    for batch in batches:
        try:
            prepared[batch.batch_id] = prep = prepare(batch)
        except BatchRejected as exc:
            prepared[batch.batch_id], problems[batch.batch_id] = None, exc.problems
            failures.append(f"{batch.object}: {exc.problems[0]['message'] if exc.problems else 'rejected'}")
            continue
        batch.rows = sum(len(f) for f in prep.tables.values())
        for suite, frame, context in prep.checks:
            key = _cache_key(batch, suite, context)
            if _passed_before(conn, key):
                counts["cached_verdicts"] += 1
            else:
                pending.append((batch, suite, frame, context, key))

    verdicts = _run_checks(validator, pending, combine)
    for (batch, _suite, _frame, _context, _key), verdict in zip(pending, verdicts, strict=True):
        if not verdict.success:
            problems[batch.batch_id] += [{"code": "expectation_failed", "severity": "critical", "message": m,
                                          "file": batch.object} for m in verdict.problems()]
            failures.append(verdict.summary())

    for batch in batches:
        prep, bad = prepared[batch.batch_id], problems[batch.batch_id]
        if bad:
            batch.status, batch.reason = "quarantined", bad[0]["message"]
            counts["quarantined"] += 1
            if on_quarantine:
                on_quarantine(batch, bad)
        else:
            for table, frame in prep.tables.items():
                frame.to_parquet(stage_path(batch, table), index=False)
            batch.meta.update(tables=sorted(prep.tables), partition=prep.partition)
            batch.status = "validated"
            counts["validated"] += 1
            counts["rows"] += batch.rows or 0
        with conn, conn.cursor() as cur:
            record_batch(cur, ctx, batch)
            if bad or (prep and prep.warnings):
                record_quarantine(cur, batch, bad + (prep.warnings if prep else []))
        log.info("%s %s: %s%s", source, batch.object, batch.status, f" ({batch.reason})" if batch.reason else "")

    if verdicts:
        with conn:
            record(conn, verdicts, run_id=ctx.run_id, logical_date=ctx.logical_date)
        validator.build_docs()
    passed = [item[4] for item, verdict in zip(pending, verdicts, strict=True) if verdict.success]
    if passed:
        with conn, conn.cursor() as cur:
            cur.executemany("insert into audit.validation_cache (batch_id, suite, suite_sha256, context_sha256)"
                            " values (%s, %s, %s, %s) on conflict do nothing", passed)
    conn.close()
    if failures:
        raise ValidationFailed(
            f"{counts['quarantined']} {source} batch(es) quarantined, nothing from them loaded:\n" + "\n".join(failures)
        )
    return counts


def _run_checks(validator, pending: list[tuple], combine: bool) -> list:
    """One verdict per pending (batch, suite, frame, context, key), in order."""
    import dataclasses

    verdicts: list = [None] * len(pending)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_batch, suite, _frame, context, _key) in enumerate(pending):
        groups.setdefault((suite, json.dumps(context, sort_keys=True, default=str)), []).append(i)
    for (suite, _), members in groups.items():
        if combine and len(members) > 1:
            frames = [pending[i][2] for i in members]
            combined = validator.validate(suite, f"{suite}:combined:{len(members)}",
                                          pd.concat(frames, ignore_index=True), context=pending[members[0]][3])
            if combined.success:
                for i, frame in zip(members, frames, strict=True):
                    verdicts[i] = dataclasses.replace(combined, batch_id=pending[i][0].batch_id,
                                                      row_count=len(frame), validation_id=str(uuid.uuid4()))
                continue
        for i in members:
            batch, suite_i, frame, context, _key = pending[i]
            verdicts[i] = validator.validate(suite_i, batch.batch_id, frame, context=context)
    return verdicts


def _partition_holds(conn, tables: dict[str, pd.DataFrame], partition: dict, batch_id: str) -> bool:
    """True when every table's partition holds exactly this batch's rows (and nothing else)."""
    from psycopg2 import sql

    where = sql.SQL(" and ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in partition)
    with conn, conn.cursor() as cur:
        for table, frame in tables.items():
            cur.execute(
                sql.SQL("select count(*), count(*) filter (where batch_id = %s) from raw.{} where {}").format(
                    sql.Identifier(table), where),
                [batch_id, *partition.values()],
            )
            total, same = cur.fetchone()
            if total != len(frame) or same != total:
                return False
    return True


def _cache_key(batch: Batch, suite: str, context: dict) -> tuple[str, str, str, str]:
    """(batch, suite, suite file checksum, context checksum): a passed verdict is valid for exactly this."""
    suite_file = EXPECTATIONS_DIR / f"{suite}.json"
    suite_sha = hashlib.sha256(suite_file.read_bytes()).hexdigest() if suite_file.exists() else "missing"
    context_sha = hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode()).hexdigest()
    return batch.batch_id, suite, suite_sha, context_sha


def _passed_before(conn, key: tuple[str, str, str, str]) -> bool:
    with conn, conn.cursor() as cur:
        cur.execute("select 1 from audit.validation_cache where batch_id = %s and suite = %s"
                    " and suite_sha256 = %s and context_sha256 = %s", key)
        return cur.fetchone() is not None


def load(ctx: RunContext, source: str, after_load: Callable[[object, Batch], None] | None = None) -> dict:
    """Load every validated batch of this run: one transaction per batch, replacing its partition."""
    from ingest.load import replace_partitions

    conn = connect()
    with conn, conn.cursor() as cur:
        batches = run_batches(cur, ctx, source, "validated")
    loaded_rows = 0
    for batch in batches:
        tables = {t: pd.read_parquet(stage_path(batch, t)) for t in batch.meta["tables"]}
        for frame in tables.values():
            frame["batch_id"] = batch.batch_id
        batch.status = "loaded"

        def bookkeeping(cur, loaded: dict[str, int], batch: Batch = batch) -> None:
            record_batch(cur, ctx, batch, rows_loaded=sum(loaded.values()))
            if after_load:
                after_load(cur, batch)

        if _partition_holds(conn, tables, batch.meta["partition"], batch.batch_id):
            # Same content already loaded (a replay, or Eurostat republishing identical data): nothing to do.
            batch.meta["unchanged"] = True
            with conn, conn.cursor() as cur:
                bookkeeping(cur, {t: 0 for t in tables})
            log.info("%s %s: unchanged, already in raw", source, batch.object)
        else:
            loaded = replace_partitions(conn, tables, batch.meta["partition"], then=bookkeeping)
            loaded_rows += sum(loaded.values())
            log.info("%s %s: loaded %s rows", source, batch.object, sum(loaded.values()))
        for t in tables:
            stage_path(batch, t).unlink(missing_ok=True)
    conn.close()
    return {"batches": len(batches), "rows": loaded_rows}
