"""Verdicts of the data-quality gate: plain dataclasses, no GX import."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class ExpectationResult:
    """Outcome of one expectation on one batch."""

    expectation: str  # rule id from the suite file, e.g. "key_unique"
    column: str | None
    severity: str  # "critical" | "warning"
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample_values: list[str] = field(default_factory=list)  # at most 5
    details: dict[str, Any] = field(default_factory=dict)  # type, expected, condition, observed, exception

    @property
    def expectation_type(self) -> str:
        return str(self.details.get("type", ""))

    def describe(self) -> str:
        """One line: rule, column, condition, counts and samples."""
        where = f" where {self.details['condition']}" if self.details.get("condition") else ""
        col = f" column {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            found = f"{self.unexpected_count} unexpected of {self.element_count} rows{pct}"
        elif "observed" in self.details:
            found = f"observed {self.details['observed']}"
            if "expected_value" in self.details:
                found += f" (expected {self.details['expected_value']})"
        else:
            found = "failed"
        if self.details.get("exception"):
            found += f"; error: {self.details['exception']}"
        sample = f"; e.g. {', '.join(self.sample_values)}" if self.sample_values else ""
        expected = self.details.get("expected", "?")
        return f"{self.expectation}{col}{where}: expected {expected}; found {found}{sample}"


@dataclass
class Verdict:
    """All results of one suite on one batch; ``success`` means no critical expectation failed."""

    batch_id: str
    suite: str
    success: bool
    results: list[ExpectationResult]
    dataset: str | None = None
    row_count: int | None = None
    skipped: list[str] = field(default_factory=list)
    validation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]

    @property
    def failed_critical(self) -> list[ExpectationResult]:
        return [r for r in self.failed if r.severity == "critical"]

    @property
    def failed_warning(self) -> list[ExpectationResult]:
        return [r for r in self.failed if r.severity != "critical"]

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def _subject(self) -> str:
        return f"batch {self.batch_id}" + (f" ({self.dataset})" if self.dataset else "")

    def summary(self) -> str:
        """Readable multi-line summary: status line, then each failed expectation with counts and samples."""
        status = "PASSED" if self.success else "FAILED"
        head = (
            f"{status} suite {self.suite} on {self._subject()}: {len(self.results)} expectations evaluated, "
            f"{len(self.failed_critical)} critical and {len(self.failed_warning)} warning failed"
            + (f", {self.row_count} rows" if self.row_count is not None else "")
        )
        lines = [head]
        for r in self.failed_critical + self.failed_warning:
            lines.append(f"  [{r.severity}] {r.describe()}")
        return "\n".join(lines)

    def problems(self, *, include_warnings: bool = False) -> list[str]:
        """One line per failed expectation (critical unless asked): batch, column, expected, found."""
        chosen = self.failed_critical + (self.failed_warning if include_warnings else [])
        return [f"{self._subject()}, suite {self.suite}: [{r.severity}] {r.describe()}" for r in chosen]

    def to_dict(self) -> dict[str, Any]:
        return {
            "validation_id": self.validation_id,
            "batch_id": self.batch_id,
            "suite": self.suite,
            "dataset": self.dataset,
            "success": self.success,
            "row_count": self.row_count,
            "failed_critical": len(self.failed_critical),
            "failed_warning": len(self.failed_warning),
            "results": [r.__dict__ for r in self.results],
            "skipped": self.skipped,
        }
