"""Data-quality gate: Great Expectations (GX Core 1.x) validates every batch before it is loaded.

Light to import: GX (~13 s to import) is loaded on the first :meth:`Validator.validate`, never here.

    validator = Validator()                       # one per Airflow task; one GX context per Validator
    verdict = validator.validate("eurostat_observations", batch_id, frame, context={"dataset": ...})
    if not verdict.success: quarantine(verdict.problems())
    record(conn, [verdict], run_id=..., logical_date=...)
    validator.build_docs()                        # Data Docs HTML under config.gx_docs_dir()

Suites are JSON files in ``expectations/`` (see :mod:`ingest.validation.suites`).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import EXPECTATIONS_DIR, gx_docs_dir
from ingest.validation.audit import record
from ingest.validation.model import ExpectationResult, Verdict
from ingest.validation.suites import Check, SuiteError, load_suite, resolve, suite_names

if TYPE_CHECKING:
    import pandas as pd

    from ingest.validation._gx import GxEngine

__all__ = ["Check", "ExpectationResult", "SuiteError", "Validator", "Verdict", "record", "suite_names"]


def _quiet_gx() -> None:
    """No analytics, no progress bars, no usage statistics (set before GX is imported)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("GX_DATA_DOCS_ANALYTICS_ENABLED", "false")


class Validator:
    """Validates frames against the JSON suites; builds its GX context once, on first use."""

    def __init__(self, docs_dir: Path | None = None, *, expectations_dir: Path | None = None) -> None:
        self.docs_dir = Path(docs_dir) if docs_dir else gx_docs_dir()
        self.expectations_dir = Path(expectations_dir) if expectations_dir else EXPECTATIONS_DIR
        self._engine: GxEngine | None = None
        self.setup_seconds: float | None = None

    @property
    def engine(self) -> GxEngine:
        if self._engine is None:
            start = time.perf_counter()
            _quiet_gx()
            from ingest.validation._gx import GxEngine

            self._engine = GxEngine()
            self.setup_seconds = time.perf_counter() - start
        return self._engine

    def checks(self, suite: str, frame: pd.DataFrame, context: dict[str, Any] | None = None) -> list[Check]:
        """The concrete expectations a suite resolves to for this frame (no GX needed)."""
        return resolve(load_suite(suite, self.expectations_dir), frame, context).checks

    def validate(
        self, suite: str, batch_id: str, frame: pd.DataFrame, *, context: dict[str, Any] | None = None
    ) -> Verdict:
        """Run ``suite`` on one batch; ``success`` is False when any critical expectation failed."""
        started = datetime.now(UTC)
        context = dict(context or {})
        spec = load_suite(suite, self.expectations_dir)
        resolution = resolve(spec, frame, context)
        row_label = self._row_label(spec, resolution.checks, frame, context)
        results = (
            self.engine.validate(suite, batch_id, frame, resolution.checks, row_label) if resolution.checks else []
        )
        dataset = context.get("dataset")
        if dataset is None and "dataset" in frame.columns and len(frame):
            dataset = str(frame["dataset"].iloc[0])
        return Verdict(
            batch_id=batch_id,
            suite=suite,
            success=not any(r.severity == "critical" and not r.success for r in results),
            results=results,
            dataset=dataset,
            row_count=len(frame),
            skipped=resolution.skipped,
            started_at=started,
            finished_at=datetime.now(UTC),
        )

    def validate_table(
        self,
        suite: str,
        batch_id: str,
        table: tuple[str, str],
        profile: pd.DataFrame,
        rows: int,
        *,
        creator: Any,
        context: dict[str, Any] | None = None,
    ) -> Verdict:
        """Run ``suite`` on a batch staged in the warehouse (``table`` = (schema, name)) with GX's SQL engine.

        The suite resolves as for a frame, on ``profile``: a frame with the staged table's columns and dtypes holding
        the distinct values of its coded columns (what ``for_each`` and ``when`` conditions look at), never its rows.
        Same checks, severities and verdict as :meth:`validate` of the same rows in memory."""
        started = datetime.now(UTC)
        context = dict(context or {})
        resolution = resolve(load_suite(suite, self.expectations_dir), profile, context)
        results = (
            self.engine.validate_table(suite, batch_id, *table, resolution.checks, creator) if resolution.checks else []
        )
        return Verdict(
            batch_id=batch_id,
            suite=suite,
            success=not any(r.severity == "critical" and not r.success for r in results),
            results=results,
            dataset=context.get("dataset"),
            row_count=rows,
            skipped=resolution.skipped,
            started_at=started,
            finished_at=datetime.now(UTC),
        )

    @staticmethod
    def _row_label(spec: dict, checks: list[Check], frame: pd.DataFrame, context: dict[str, Any]) -> list[str]:
        """Columns naming a row in samples (e.g. for a null value): the suite's ``row_label`` or the key."""
        from ingest.validation.suites import dimensions

        label = spec.get("row_label")
        if label == "$key_columns":
            return dimensions(frame, context) + ["time"]
        if isinstance(label, list):
            return [c for c in label if c in frame.columns]
        return []

    def build_docs(self) -> Path | None:
        """Write GX Data Docs (HTML) for the batches this Validator validated; the index.html path."""
        if self._engine is None or self._engine.validated == 0:
            return None
        return self._engine.build_docs(self.docs_dir)
