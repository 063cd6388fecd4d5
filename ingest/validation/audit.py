"""Verdicts into ``audit.validation_runs`` / ``audit.validation_results`` (migration 0003) for BI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date
from typing import Any

from ingest.validation.model import Verdict

RUNS = ("audit", "validation_runs")
RESULTS = ("audit", "validation_results")
RUN_COLUMNS = (
    "validation_id",
    "run_id",
    "batch_id",
    "suite",
    "dataset",
    "logical_date",
    "success",
    "evaluated",
    "failed_critical",
    "failed_warning",
    "row_count",
    "skipped",
    "started_at",
    "finished_at",
)
RESULT_COLUMNS = (
    "validation_id",
    "ordinal",
    "batch_id",
    "suite",
    "expectation",
    "expectation_type",
    "column_name",
    "severity",
    "success",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "sample_values",
    "details",
    "run_id",
    "logical_date",
)


def _insert(table: tuple[str, str], columns: tuple[str, ...], conflict: tuple[str, ...]) -> Any:
    from psycopg2 import sql

    return sql.SQL("insert into {} ({}) values %s on conflict ({}) do nothing").format(
        sql.Identifier(*table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(map(sql.Identifier, conflict)),
    )


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def record(conn: Any, verdicts: Iterable[Verdict], *, run_id: str | None, logical_date: date | str | None) -> int:
    """Insert one run row per verdict and one result row per expectation; returns result rows written.

    Idempotent per verdict (``validation_id``). Runs in the caller's transaction (``with conn:`` commits).
    """
    from psycopg2.extras import Json, execute_values

    from ingest.warehouse import storable

    runs, results = [], []
    for v in verdicts:
        runs.append(
            (
                v.validation_id,
                run_id,
                v.batch_id,
                v.suite,
                v.dataset,
                logical_date,
                v.success,
                len(v.results),
                len(v.failed_critical),
                len(v.failed_warning),
                v.row_count,
                Json(v.skipped),
                v.started_at,
                v.finished_at,
            )
        )
        for i, r in enumerate(v.results):
            results.append(
                (
                    v.validation_id,
                    i,
                    v.batch_id,
                    v.suite,
                    r.expectation,
                    r.expectation_type,
                    r.column,
                    r.severity,
                    r.success,
                    r.element_count,
                    r.unexpected_count,
                    _num(r.unexpected_percent),
                    Json(storable(list(r.sample_values))),
                    Json(storable(json.loads(json.dumps(r.details, default=str)))),
                    run_id,
                    logical_date,
                )
            )
    with conn.cursor() as cur:
        if runs:
            execute_values(cur, _insert(RUNS, RUN_COLUMNS, ("validation_id",)), runs)
        if results:
            execute_values(cur, _insert(RESULTS, RESULT_COLUMNS, ("validation_id", "ordinal")), results, page_size=500)
    return len(results)
