"""Validate-then-load for every source: GX validation of parsed batches, quarantine, atomic COPY into raw."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ingest.config import EXPECTATIONS_DIR, GX_DOCS, gx_docs_dir
from ingest.storage import default_storage
from ingest.tasks.common import (
    Batch,
    RunContext,
    log,
    record_batch,
    record_quarantine,
    run_batches,
    stage_done,
    stage_read,
    stage_remove,
    stage_write,
)
from ingest.tasks.staged import StagedTable, check_staged, drop_staged
from ingest.warehouse import LOADER, connect, storable


class BatchRejected(Exception):
    """A batch cannot be parsed; carries machine-readable problems (dicts with at least `message`)."""

    def __init__(self, problems: list[dict]):
        super().__init__(problems[0]["message"] if problems else "rejected")
        self.problems = problems


def unexpected(obj: str, stage: str, exc: BaseException) -> dict:
    """A problem for a failure nobody anticipated: named by stage and exception type only (an exception's text
    can quote the data it choked on, which may be personal)."""
    return {
        "code": f"{stage}_failed",
        "severity": "error",
        "file": obj,
        "row": None,
        "column": None,
        "message": f"{obj}: row -, column -: {stage} failed unexpectedly ({type(exc).__name__})",
    }


@dataclass
class Prepared:
    """A parsed batch: raw tables to load, GX checks to run, the partition a load replaces (or, for a big batch,
    the staged table holding its rows, which ``tables`` and ``checks`` then leave empty)."""

    tables: dict[str, pd.DataFrame]
    checks: list[tuple[str, pd.DataFrame, dict]]  # (suite, frame, context)
    partition: dict[str, object]
    warnings: list[dict] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)  # recorded with the batch (e.g. the pseudonym key id)
    staged: StagedTable | None = None
    held_rows: int = 0  # a big batch raw holds in full already (not staged again): its rows there


def validate(
    ctx: RunContext,
    source: str,
    prepare: Callable[[Batch], Prepared],
    on_quarantine: Callable[[Batch, list[dict]], None] | None = None,
    combine: bool = True,
) -> dict:
    """Parse and validate every received batch of this run; stage passing ones, quarantine the rest.

    A batch that fails at any point (parse, GX, staging) is quarantined on its own; the others go on. The
    task itself succeeds: quarantines are data problems, reported by the run's ``quarantine_report`` task
    (``counts["summary"]`` holds one line per quarantined batch).

    With ``combine`` (small batches, e.g. survey files), the frames of one suite and context are validated
    together first; only when that combined validation fails is each batch validated on its own, so the
    verdicts stay per batch while GX's per-validation cost is paid once per group on a good night.
    """
    from ingest.validation import Validator, record

    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        batches = run_batches(cur, ctx, source, "received")
    # One GX Data Docs site per source (docs/gx/<source>/): GX rebuilds a site from its own context's results
    # only, so a shared site kept the last validate task's pages; build_docs links the sites (docs/gx/index.html).
    validator = Validator(docs_dir=gx_docs_dir() / source) if batches else None
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
        except Exception as exc:  # noqa: BLE001 - one batch's crash (RecursionError, MemoryError...) is its own
            log.warning("%s %s: parse failed unexpectedly (%s)", source, batch.object, type(exc).__name__)
            bad = unexpected(batch.object, "parse", exc)
            prepared[batch.batch_id], problems[batch.batch_id] = None, [bad]
            failures.append(f"{batch.object}: {bad['message']}")
            continue
        batch.rows = sum(len(f) for f in prep.tables.values()) + (prep.staged.rows if prep.staged else prep.held_rows)
        for suite, frame, context in prep.checks:
            key = _cache_key(batch, suite, context)
            if _passed_before(conn, key):
                counts["cached_verdicts"] += 1
            else:
                pending.append((batch, suite, frame, context, key))

    verdicts = _run_checks(validator, pending, combine)
    for batch in batches:  # big batches, staged in the warehouse: validated there, never cached (staged anew)
        staged = prepared[batch.batch_id].staged if prepared[batch.batch_id] else None
        if staged is not None:
            verdict = check_staged(validator, batch, staged)
            pending.append((batch, staged.suite, None, staged.context, _cache_key(batch, staged.suite, staged.context)))
            verdicts.append(verdict)
    for (batch, _suite, _frame, _context, _key), verdict in zip(pending, verdicts, strict=True):
        if isinstance(verdict, BaseException):
            problems[batch.batch_id].append(unexpected(batch.object, "validation", verdict))
            failures.append(f"{batch.object}: {problems[batch.batch_id][-1]['message']}")
        elif not verdict.success:
            problems[batch.batch_id] += expectation_problems(verdict, batch.object)
            failures.append(verdict.summary())

    for batch in batches:
        prep, bad = prepared[batch.batch_id], problems[batch.batch_id]
        if not bad:
            try:
                for table, frame in prep.tables.items():
                    stage_write(frame, batch, table, ctx)
            except Exception as exc:  # noqa: BLE001 - e.g. a value Arrow cannot store: this batch only
                bad = [unexpected(batch.object, "staging", exc)]
                failures.append(f"{batch.object}: {bad[0]['message']}")
        if bad:
            batch.status, batch.reason = "quarantined", bad[0]["message"]
            counts["quarantined"] += 1
            if prep is not None and prep.staged is not None:
                drop_staged(prep.staged.schema, prep.staged.name)
            if on_quarantine:
                on_quarantine(batch, bad)
        else:
            batch.meta.update(tables=sorted(prep.tables), partition=prep.partition, **prep.meta)
            batch.meta.pop("staged", None)  # a replayed batch's record of an earlier run's staged table
            if prep.staged is not None:
                batch.meta["staged"] = prep.staged.meta
            batch.status = "validated"
            counts["validated"] += 1
            counts["rows"] += batch.rows or 0
        with conn, conn.cursor() as cur:
            record_batch(cur, ctx, batch)
            if bad or (prep and prep.warnings):
                record_quarantine(cur, batch, bad + (prep.warnings if prep else []))
        log.info("%s %s: %s%s", source, batch.object, batch.status, f" ({batch.reason})" if batch.reason else "")

    recorded = [v for v in verdicts if not isinstance(v, BaseException)]
    if recorded:
        with conn:
            record(conn, recorded, run_id=ctx.run_id, logical_date=ctx.logical_date)
        if validator.build_docs() is not None:  # written locally, published where every worker sees it
            default_storage().publish_dir(validator.docs_dir, *GX_DOCS, source)
    passed = [
        item[4]
        for item, verdict in zip(pending, verdicts, strict=True)
        if not isinstance(verdict, BaseException) and verdict.success
    ]
    if passed:
        with conn, conn.cursor() as cur:
            cur.executemany(
                "insert into audit.validation_cache (batch_id, suite, suite_sha256, context_sha256)"
                " values (%s, %s, %s, %s) on conflict do nothing",
                passed,
            )
    conn.close()
    if failures:
        counts["summary"] = storable(
            f"{counts['quarantined']} {source} batch(es) quarantined, nothing from them loaded:\n" + "\n".join(failures)
        )
        log.warning("%s", counts["summary"])
    return counts


def expectation_problems(verdict, obj: str) -> list[dict]:
    return [
        {"code": "expectation_failed", "severity": "critical", "message": m, "file": obj} for m in verdict.problems()
    ]


def check_only(obj: str, checks: list[tuple[str, pd.DataFrame, dict]]) -> list[dict]:
    """The GX verdicts of a parsed batch without a warehouse (``surveys check``): the same suites, contexts and
    severities as the pipeline's validate task; the critical problems, empty when the batch would load."""
    from ingest.validation import Validator

    validator = Validator()
    problems: list[dict] = []
    for suite, frame, context in checks:
        try:
            verdict = validator.validate(suite, obj, frame, context=context)
        except Exception as exc:  # noqa: BLE001 - as in validate(): this batch would be quarantined
            problems.append(unexpected(obj, "validation", exc))
            continue
        if not verdict.success:
            problems += expectation_problems(verdict, obj)
    return problems


def _run_checks(validator, pending: list[tuple], combine: bool) -> list:
    """One verdict per pending (batch, suite, frame, context, key), in order; the exception instead of a verdict
    when GX itself failed on that batch."""
    import dataclasses

    verdicts: list = [None] * len(pending)
    # Batches are validated together per suite and context, in rounds: a batch joins the first round holding none
    # of its values of a key the suite requires unique. A survey file and its re-submitted correction share those
    # (one response per cluster and wave): validated together, the correction would fail as a duplicate.
    slots: dict[tuple[str, str], list[int]] = {}
    for i, (_batch, suite, _frame, context, _key) in enumerate(pending):
        slots.setdefault((suite, json.dumps(context, sort_keys=True, default=str)), []).append(i)
    groups: dict[tuple[str, str, int], list[int]] = {}
    for slot, members in slots.items():
        if not combine or len(members) == 1:
            groups[(*slot, 0)] = members
            continue
        rounds: list = []  # per round, the key values its batches hold (None: a batch alone)
        for i in members:
            _batch, suite, frame, context, _key = pending[i]
            try:
                keys = _unique_keys(validator, suite, frame, context)
            except Exception:  # noqa: BLE001 - the suite does not resolve on this frame: its validation says why
                keys = None
            at = next((r for r, held in enumerate(rounds) if keys is not None and not _overlap(held, keys)), None)
            if at is None:
                at = len(rounds)
                rounds.append(None if keys is None else {})
            for columns, values in (keys or {}).items():
                rounds[at].setdefault(columns, set()).update(values)
            groups.setdefault((*slot, at), []).append(i)
    for (suite, _context, _round), members in groups.items():
        if combine and len(members) > 1:
            frames = [pending[i][2] for i in members]
            try:
                combined = validator.validate(
                    suite,
                    f"{suite}:combined:{len(members)}",
                    pd.concat(frames, ignore_index=True),
                    context=pending[members[0]][3],
                )
            except Exception:  # noqa: BLE001 - one batch broke the group: find it by validating each alone
                combined = None
            if combined is not None and combined.success:
                for i, frame in zip(members, frames, strict=True):
                    verdicts[i] = dataclasses.replace(
                        combined, batch_id=pending[i][0].batch_id, row_count=len(frame), validation_id=str(uuid.uuid4())
                    )
                continue
        for i in members:
            batch, suite_i, frame, context, _key = pending[i]
            try:
                verdicts[i] = validator.validate(suite_i, batch.batch_id, frame, context=context)
            except Exception as exc:  # noqa: BLE001 - this batch is quarantined, the others go on
                log.warning("%s: validation %s failed unexpectedly (%s)", batch.object, suite_i, type(exc).__name__)
                verdicts[i] = exc
    return verdicts


def _unique_keys(validator, suite: str, frame: pd.DataFrame, context: dict) -> dict[tuple[str, ...], set] | None:
    """The values of every key the suite requires unique (compound or single column), per key; None when the suite
    counts the table's rows (a batch is then validated alone: two batches together could pass a count neither
    passes)."""
    keys: dict[tuple[str, ...], set] = {}
    for check in validator.checks(suite, frame, context):
        if check.type.startswith("expect_table_row_count"):
            return None
        if check.type == "expect_compound_columns_to_be_unique":
            columns = tuple(check.kwargs["column_list"])
        elif check.type == "expect_column_values_to_be_unique":
            columns = (check.kwargs["column"],)
        else:
            continue
        if set(columns) <= set(frame.columns):
            keys[columns] = set(frame[list(columns)].astype(str).itertuples(index=False, name=None))
    return keys


def _overlap(held: dict[tuple[str, ...], set] | None, keys: dict[tuple[str, ...], set]) -> bool:
    return held is None or any(not values.isdisjoint(held.get(columns, ())) for columns, values in keys.items())


def _partition_holds(conn, tables: dict[str, pd.DataFrame], partition: dict, batch_id: str) -> bool:
    """True when every table's partition holds exactly this batch's rows (and nothing else)."""
    from psycopg2 import sql

    where = sql.SQL(" and ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in partition)
    with conn, conn.cursor() as cur:
        for table, frame in tables.items():
            cur.execute(
                sql.SQL("select count(*), count(*) filter (where batch_id = %s) from raw.{} where {}").format(
                    sql.Identifier(table), where
                ),
                [batch_id, *partition.values()],
            )
            total, same = cur.fetchone()
            if total != len(frame) or same != total:
                return False
            if "respondent_pid" in frame.columns:  # same file, another pseudonym key (a rotation): reload
                cur.execute(
                    sql.SQL(
                        "select coalesce(array_agg(respondent_pid order by respondent_pid), '{{}}')"
                        " from raw.{} where batch_id = %s"
                    ).format(sql.Identifier(table)),
                    [batch_id],
                )
                if cur.fetchone()[0] != sorted(frame["respondent_pid"].astype(str)):
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
        cur.execute(
            "select 1 from audit.validation_cache where batch_id = %s and suite = %s"
            " and suite_sha256 = %s and context_sha256 = %s",
            key,
        )
        return cur.fetchone() is not None


class LoadFailed(RuntimeError):
    """Raised after every batch was tried when some could not be loaded for a reason that is not their data."""


def load(
    ctx: RunContext,
    source: str,
    after_load: Callable[[object, Batch], None] | None = None,
    on_quarantine: Callable[[Batch, list[dict]], None] | None = None,
) -> dict:
    """Load every validated batch of this run: one transaction per batch, replacing its partition.

    A batch whose rows the warehouse refuses (a value out of range, a NUL byte, a constraint) is quarantined
    with the row and column the warehouse names, and the next batch is loaded: a data problem. Any other
    failure (the warehouse gone, a staged file missing) is tried for every batch, then fails the task.
    """
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        batches = run_batches(cur, ctx, source, "validated")
    loaded_rows, quarantined, broken = 0, 0, []
    for batch in batches:
        try:
            loaded_rows += _load_one(conn, ctx, source, batch, after_load)
        except REFUSED as exc:
            bad = [refused(batch.object, exc)]
            if batch.meta.get("staged"):
                drop_staged(batch.meta["staged"]["schema"], batch.meta["staged"]["name"])
            batch.status, batch.reason = "quarantined", bad[0]["message"]
            quarantined += 1
            with conn, conn.cursor() as cur:
                record_batch(cur, ctx, batch)
                record_quarantine(cur, batch, bad)
            if on_quarantine:
                on_quarantine(batch, bad)
            log.warning("%s %s: quarantined at load (%s)", source, batch.object, batch.reason)
        except Exception as exc:  # noqa: BLE001 - tried for every batch, reported below
            if conn.closed:
                conn = connect(role=LOADER)
            broken.append(f"{batch.object}: {type(exc).__name__}: {str(exc).strip().splitlines()[:1]}")
        finally:
            for t in batch.meta.get("tables", []):
                if batch.status in ("loaded", "quarantined"):
                    stage_remove(batch, t, ctx)
    conn.close()
    stage_done(ctx)
    if broken:
        raise LoadFailed(f"{len(broken)} {source} batch(es) could not be loaded:\n" + "\n".join(broken))
    return {"batches": len(batches), "rows": loaded_rows, "quarantined": quarantined}


def _load_one(
    conn, ctx: RunContext, source: str, batch: Batch, after_load: Callable[[object, Batch], None] | None
) -> int:
    from ingest.load import publish_staged, replace_partitions

    tables = {t: stage_read(batch, t, ctx) for t in batch.meta["tables"]}
    for frame in tables.values():
        frame["batch_id"] = batch.batch_id

    def bookkeeping(cur, loaded: dict[str, int]) -> None:
        batch.status = "loaded"
        record_batch(cur, ctx, batch, rows_loaded=sum(loaded.values()))
        if after_load:
            after_load(cur, batch)

    staged = batch.meta.get("staged")
    if staged:
        publish_staged(conn, staged, batch.meta["partition"], then=bookkeeping, rows=batch.rows or 0)
        log.info("%s %s: published %s staged rows", source, batch.object, batch.rows)
        return batch.rows or 0
    if _partition_holds(conn, tables, batch.meta["partition"], batch.batch_id):
        # Same content already loaded (a replay, or Eurostat republishing identical data): nothing to do.
        batch.meta["unchanged"] = True
        with conn, conn.cursor() as cur:
            bookkeeping(cur, {t: 0 for t in tables})
        log.info("%s %s: unchanged, already in raw", source, batch.object)
        return 0
    loaded = replace_partitions(conn, tables, batch.meta["partition"], then=bookkeeping)
    log.info("%s %s: loaded %s rows", source, batch.object, sum(loaded.values()))
    return sum(loaded.values())


def _refusals() -> tuple[type[BaseException], ...]:
    import psycopg2

    # DataError: range, NUL, encoding, invalid input; IntegrityError: not null, check, unique. ValueError and
    # UnicodeError: a value the COPY writer cannot encode. Anything else is not about the batch's data.
    return psycopg2.DataError, psycopg2.IntegrityError, ValueError, TypeError


REFUSED = _refusals()


def refused(obj: str, exc: BaseException) -> dict:
    """One problem for rows the warehouse refused: row (of the raw table) and column from the COPY context,
    the condition by name; never the value (PostgreSQL quotes it, and it may be personal)."""
    import re

    diag = getattr(exc, "diag", None)
    where = re.match(r"COPY (\w+), line (\d+)(?:, column (\w+))?", getattr(diag, "context", None) or "")
    table, row, column = (where.group(1), int(where.group(2)), where.group(3)) if where else (None, None, None)
    column = column or getattr(diag, "column_name", None)
    table = table or getattr(diag, "table_name", None)
    pgcode = getattr(exc, "pgcode", None)
    if pgcode:
        from psycopg2 import errorcodes

        condition = (errorcodes.lookup(pgcode) or pgcode).lower()
    else:
        condition = type(exc).__name__
    in_table = f" of raw.{table}" if table else ""
    return {
        "code": "load_refused",
        "severity": "error",
        "file": obj,
        "row": row,
        "column": column,
        "expected": "a value the warehouse column accepts",
        "found": condition,
        "message": f"{obj}: row {row if row is not None else '-'}{in_table}, column {column or '-'}: "
        f"the warehouse refused the value ({condition})",
    }
