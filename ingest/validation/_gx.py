"""The GX Core side of the gate: imported lazily by :class:`ingest.validation.Validator` (GX import ~13 s).

One ephemeral context per engine, a pandas datasource with a whole-dataframe batch definition; every batch
is validated against an ExpectationSuite built from resolved :class:`~ingest.validation.suites.Check`
objects, and its result is kept in the context's (in-memory) validation results store for Data Docs.
"""

from __future__ import annotations

import logging
import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_DATA_DOCS_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import SqlAlchemyExecutionEngine  # noqa: E402
from great_expectations.expectations.metrics.map_metric_provider import multicolumn_function_partial  # noqa: E402
from great_expectations.expectations.metrics.multicolumn_map_metrics.compound_columns_unique import (  # noqa: E402
    CompoundColumnsUnique,
)
from great_expectations.expectations.registry import get_expectation_impl  # noqa: E402
from great_expectations.expectations.row_conditions import Column  # noqa: E402

from ingest.validation.model import ExpectationResult  # noqa: E402
from ingest.validation.suites import Check  # noqa: E402

SAMPLES = 5
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
# First pass: counts only, no unexpected values, their rows or their counts (a fifth of GX's time on a clean
# batch). A batch with any unexpected value or failure is validated again with RESULT_FORMAT for its samples, so
# the verdict, the audit records and the Data Docs of every batch are those of a RESULT_FORMAT validation.
COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}
DOCS_SITE = "ss4gl"


class ExpectColumnDtypeIn(gxe.ExpectColumnValuesToBeInTypeList):
    """``expect_column_values_to_be_in_type_list`` that also matches a pandas dtype by its name.

    GX 1.24 compares extension dtypes with default-constructed instances, so pandas 3's ``str`` dtype
    (``StringDtype(na_value=nan)``) or ``Int64`` never match a type name; here ``str(dtype)`` in
    ``type_list`` is a match too. Object columns keep GX's per-value check (``str``, ``int``, ``float``...).
    """

    def _validate_pandas(self, actual_column_type: Any, expected_types_list: Any) -> dict:
        if expected_types_list is not None and str(actual_column_type) in expected_types_list:
            return {"success": True, "result": {"observed_value": str(actual_column_type)}}
        out = super()._validate_pandas(actual_column_type=actual_column_type, expected_types_list=expected_types_list)
        out["result"]["observed_value"] = str(actual_column_type)
        return out

    def _validate_sqlalchemy(self, actual_column_type: Any, expected_types_list: Any, execution_engine: Any) -> dict:
        """A warehouse column (a big batch validated where it is staged) matches the pandas dtype it is read as:
        the suite names pandas dtypes, whichever engine runs it."""
        if isinstance(actual_column_type, str):  # GX reflects the type as its SQL text on some dialects (Postgres)
            sql_type = str(actual_column_type).split("(")[0].strip().upper().replace(" ", "_")
        else:
            sql_type = type(actual_column_type).__name__.upper()
        as_pandas = SQL_AS_PANDAS.get(sql_type, sql_type)
        if expected_types_list is None or as_pandas in expected_types_list or sql_type in expected_types_list:
            return {"success": True, "result": {"observed_value": as_pandas}}
        return {"success": False, "result": {"observed_value": as_pandas}}


def _quietly_registered(define):
    """Define a metric provider that replaces one of GX's (GX logs each replacement as a warning)."""
    registry_log = logging.getLogger("great_expectations.expectations.registry")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        return define()
    finally:
        registry_log.setLevel(level)


def _one_pass_compound_unique() -> type:
    class _CompoundColumnsUniqueOnePass(CompoundColumnsUnique):
        """GX's SQL form of ``compound_columns.unique`` (``expect_compound_columns_to_be_unique``), replaced.

        GX joins every row of the table (all its columns) to its group's count: on a staged bulk batch of 20 M rows that
        one query took 146 s of a 200 s validation. Here each row's group count is a window ``count(*) over (partition
        by the key)`` over the key columns only (one pass, 8× faster on 2 M rows), which also counts keys holding nulls
        as equal, as the pandas engine does (``DataFrame.duplicated``): the same unexpected rows either way. Only the
        key columns can be reported (``COMPLETE``'s whole unexpected rows are not used here)."""

        @multicolumn_function_partial(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy_function(self, column_list, **kwargs):
            names = kwargs.get("_column_names")
            counted = sa.func.count().over(partition_by=[sa.column(c) for c in names]).label("_num_rows")
            return (
                sa.select(*[sa.column(c) for c in names], counted)
                .select_from(kwargs.get("_table"))
                .alias("original_table_clause")
            )

    return _CompoundColumnsUniqueOnePass


_quietly_registered(_one_pass_compound_unique)


# Warehouse column types as the pandas dtypes their values are read as (ExpectColumnDtypeIn on a staged table).
SQL_AS_PANDAS = {
    "NUMERIC": "float64",
    "DOUBLE_PRECISION": "float64",
    "FLOAT": "float64",
    "REAL": "float32",
    "BIGINT": "int64",
    "INTEGER": "int64",
    "SMALLINT": "int64",
    "TEXT": "str",
    "VARCHAR": "str",
    "BOOLEAN": "bool",
}


def _row_condition(cond: dict[str, Any] | None) -> Any:
    if not cond:
        return None
    if "null" in cond:
        parts = [Column(c).is_null() for c in cond["null"]]
        out = parts[0]
        for p in parts[1:]:
            out = out & p
        return out
    if "in" in cond:
        return Column(cond["column"]).is_in(cond["in"])
    return Column(cond["column"]).is_not_in(cond["not_in"])


def _clean(r: Any) -> bool:
    """An expectation result with nothing to show: passed, raised nothing, no unexpected value."""
    info = r.exception_info or {}
    raised = isinstance(info, dict) and bool(info.get("raised_exception"))
    return bool(r.success) and not raised and not (r.result or {}).get("unexpected_count")


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return repr(value)
    return str(value)


class GxEngine:
    """An ephemeral GX context with one pandas dataframe asset; validates many batches."""

    def __init__(self) -> None:
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = self.context.data_sources.add_pandas("ss4gl").add_dataframe_asset("batches")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
        self._sql: Any = None  # the warehouse as a GX SQL datasource, made on the first staged table
        self.validated = 0

    def expectation(self, check: Check, index: int) -> Any:
        cls = ExpectColumnDtypeIn if check.type == "expect_column_dtype_in" else get_expectation_impl(check.type)
        kwargs = dict(check.kwargs)
        cond = _row_condition(check.condition)
        if cond is not None:
            kwargs["row_condition"] = cond
        meta = {
            "ss4gl_index": index,
            "rule": check.rule,
            "severity": check.severity,
            "expected": check.expected,
        }
        return cls(**kwargs, meta=meta)

    def validate(
        self, suite_name: str, batch_id: str, frame: pd.DataFrame, checks: list[Check], row_label: list[str]
    ) -> list[ExpectationResult]:
        # Given whole: add_expectation compares each new expectation with every one before it (quadratic).
        suite = gx.ExpectationSuite(
            name=suite_name, expectations=[self.expectation(check, i) for i, check in enumerate(checks)]
        )
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return self._run(suite_name, batch_id, suite, batch, checks, frame, row_label)

    def validate_table(
        self, suite_name: str, batch_id: str, schema: str, table: str, checks: list[Check], creator: Any
    ) -> list[ExpectationResult]:
        """Validate a table in the warehouse with GX's SQL execution engine (the queries run where the rows are).

        ``creator`` opens a DB-API connection (the stage's role): GX is given no URL, so no credential reaches its
        configuration, results or Data Docs."""
        if self._sql is None:
            self._sql = self.context.data_sources.add_sql(
                "warehouse", connection_string="postgresql+psycopg2://", kwargs={"creator": creator}
            )
        name = f"{schema}.{table}"
        try:
            asset = self._sql.get_asset(name)
        except LookupError:
            asset = self._sql.add_table_asset(name, table_name=table, schema_name=schema)
        batch = asset.add_batch_definition_whole_table(f"whole:{batch_id}"[:200]).get_batch()
        suite = gx.ExpectationSuite(
            name=suite_name, expectations=[self.expectation(check, i) for i, check in enumerate(checks)]
        )
        return self._run(suite_name, batch_id, suite, batch, checks, None, [])

    def _run(
        self,
        suite_name: str,
        batch_id: str,
        suite: Any,
        batch: Any,
        checks: list[Check],
        frame: pd.DataFrame | None,
        row_label: list[str],
    ) -> list[ExpectationResult]:
        result = batch.validate(suite, result_format=COUNTS_ONLY)
        if not all(_clean(r) for r in result.results):
            result = batch.validate(suite, result_format=RESULT_FORMAT)
        out: list[ExpectationResult | None] = [None] * len(checks)
        for r in result.results:
            i = int(r.expectation_config.meta["ss4gl_index"])
            out[i] = self._convert(checks[i], r, frame, row_label)
            if checks[i].mask_samples:
                self._mask(r, checks[i])
        self._store(suite_name, batch_id, result)
        self.validated += 1
        return [r for r in out if r is not None]

    # ------------------------------------------------------------------------------------------ results
    def _convert(self, check: Check, r: Any, frame: pd.DataFrame | None, row_label: list[str]) -> ExpectationResult:
        res = dict(r.result or {})
        info = r.exception_info or {}
        raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
        details: dict[str, Any] = {"type": check.type, "expected": check.expected}
        if check.condition:
            from ingest.validation.suites import describe_condition

            details["condition"] = describe_condition(check.condition)
        if raised:
            msg = str(info.get("exception_message") or "exception")
            details["exception"] = msg.splitlines()[0][:300]
        samples: list[str] = []
        if "observed_value" in res:
            details["observed"] = _text(res["observed_value"])
        if res.get("details"):
            mismatched = (res["details"] or {}).get("mismatched")
            if isinstance(mismatched, dict):
                details["mismatched"] = {k: list(v) for k, v in mismatched.items()}
                samples = [f"missing column {c}" for c in mismatched.get("missing", [])]
        values = list(res.get("partial_unexpected_list") or [])
        index = list(res.get("partial_unexpected_index_list") or [])
        for pos, value in enumerate(values):
            if len(samples) >= SAMPLES:
                break
            if _is_null(value):
                samples.append(self._row(frame, index[pos] if pos < len(index) else None, row_label))
            else:
                samples.append(_text(value))
        if not samples and "observed" in details:
            samples = [f"observed {details['observed']}"]
        if check.mask_samples:
            samples = [self._redact(s, check) for s in samples]
        if "value" in check.kwargs and not isinstance(check.kwargs["value"], (list, dict)):
            details["expected_value"] = check.kwargs["value"]
        unexpected_pct = res.get("unexpected_percent_total", res.get("unexpected_percent"))
        return ExpectationResult(
            expectation=check.rule,
            column=check.column,
            severity=check.severity,
            success=bool(r.success) and not raised,
            element_count=res.get("element_count"),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=float(unexpected_pct) if unexpected_pct is not None else None,
            sample_values=list(dict.fromkeys(samples))[:SAMPLES],
            details=details,
        )

    @staticmethod
    def _row(frame: pd.DataFrame | None, label: Any, row_label: list[str]) -> str:
        if label is None or frame is None:
            return "null"
        try:
            row = frame.loc[label]
        except (KeyError, TypeError):
            return f"null at row {label}"
        cols = [c for c in row_label if c in frame.columns]
        return "null at " + (", ".join(f"{c}={row[c]}" for c in cols) if cols else f"row {label}")

    @staticmethod
    def _redact(text: str, check: Check) -> str:
        regex = check.kwargs.get("regex")
        return re.sub(regex, "[redacted]", text) if regex else "[redacted]"

    def _mask(self, r: Any, check: Check) -> None:
        """Keep personal data out of the stored result (and so out of Data Docs)."""
        res = r.result or {}
        for key in ("partial_unexpected_list",):
            if res.get(key):
                res[key] = [self._redact(str(v), check) for v in res[key]]
        if res.get("partial_unexpected_counts"):
            res["partial_unexpected_counts"] = [
                {"value": self._redact(str(c.get("value")), check), "count": c.get("count")}
                for c in res["partial_unexpected_counts"]
            ]

    def _store(self, suite_name: str, batch_id: str, result: Any) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", batch_id)[:120] or "batch"
        run_id = RunIdentifier(run_name=safe, run_time=datetime.now(UTC))
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=safe,
        )
        result.meta["run_id"] = run_id
        self.context.validation_results_store.set(key, result)

    # ------------------------------------------------------------------------------------------ docs
    def build_docs(self, docs_dir: Path) -> Path:
        docs_dir.mkdir(parents=True, exist_ok=True)
        sites = self.context.list_data_docs_sites()
        if DOCS_SITE not in sites:
            self.context.add_data_docs_site(
                DOCS_SITE,
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self.context.build_data_docs(site_names=[DOCS_SITE])
        return docs_dir / "index.html"
