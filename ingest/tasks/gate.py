"""Validate-then-load for every source: GX validation of parsed batches, quarantine, atomic COPY into raw."""

from __future__ import annotations

import hashlib
import json
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
             on_quarantine: Callable[[Batch, list[dict]], None] | None = None) -> dict:
    """Parse and validate every received batch of this run; stage passing ones, quarantine the rest."""
    from ingest.validation import Validator, record

    conn = connect()
    with conn, conn.cursor() as cur:
        batches = run_batches(cur, ctx, source, "received")
    validator = Validator() if batches else None
    verdicts, failures, counts = [], [], {"validated": 0, "quarantined": 0, "rows": 0}
    passed: list[tuple[str, str, str, str]] = []
    cached = 0
    for batch in batches:
        problems: list[dict] = []
        try:
            prepared = prepare(batch)
        except BatchRejected as exc:
            prepared, problems = None, exc.problems
        if prepared is not None:
            batch.rows = sum(len(f) for f in prepared.tables.values())
            for suite, frame, context in prepared.checks:
                key = _cache_key(batch, suite, context)
                if _passed_before(conn, key):
                    cached += 1
                    continue
                verdict = validator.validate(suite, batch.batch_id, frame, context=context)
                if verdict.success:
                    passed.append(key)
                verdicts.append(verdict)
                if not verdict.success:
                    problems += [{"code": "expectation_failed", "severity": "critical", "message": m,
                                  "file": batch.object} for m in verdict.problems()]
                    failures.append(verdict.summary())
        if problems:
            batch.status = "quarantined"
            batch.reason = problems[0]["message"]
            counts["quarantined"] += 1
            if prepared is None:
                failures.append(f"{batch.object}: {batch.reason}")
            if on_quarantine:
                on_quarantine(batch, problems)
        else:
            for table, frame in prepared.tables.items():
                frame.to_parquet(stage_path(batch, table), index=False)
            batch.meta.update(tables=sorted(prepared.tables), partition=prepared.partition)
            batch.status = "validated"
            counts["validated"] += 1
            counts["rows"] += batch.rows or 0
        with conn, conn.cursor() as cur:
            record_batch(cur, ctx, batch)
            if problems or (prepared and prepared.warnings):
                record_quarantine(cur, batch, problems + (prepared.warnings if prepared else []))
        log.info("%s %s: %s%s", source, batch.object, batch.status, f" ({batch.reason})" if batch.reason else "")
    if verdicts:
        with conn:
            record(conn, verdicts, run_id=ctx.run_id, logical_date=ctx.logical_date)
        validator.build_docs()
    if passed:
        with conn, conn.cursor() as cur:
            cur.executemany("insert into audit.validation_cache (batch_id, suite, suite_sha256, context_sha256)"
                            " values (%s, %s, %s, %s) on conflict do nothing", passed)
    counts["cached_verdicts"] = cached
    conn.close()
    if failures:
        raise ValidationFailed(
            f"{counts['quarantined']} {source} batch(es) quarantined, nothing from them loaded:\n" + "\n".join(failures)
        )
    return counts


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

        loaded = replace_partitions(conn, tables, batch.meta["partition"], then=bookkeeping)
        for t in tables:
            stage_path(batch, t).unlink(missing_ok=True)
        loaded_rows += sum(loaded.values())
        log.info("%s %s: loaded %s rows", source, batch.object, sum(loaded.values()))
    conn.close()
    return {"batches": len(batches), "rows": loaded_rows}
