"""Problems found in a survey file: one line each, naming file, row, column, expected and found."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ingest.surveys.privacy import mask

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    severity: Severity
    code: str
    message: str
    file: str
    row: int | None = None
    column: str | None = None
    expected: str | None = None
    found: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    to_dict = as_dict


def make_problem(
    severity: Severity,
    code: str,
    file: str,
    reason: str,
    *,
    row: int | None = None,
    column: str | None = None,
    expected: object = None,
    found: object = None,
) -> Problem:
    """Build a problem; ``found`` is masked (no e-mail / phone echoes) and the message is one line."""
    exp = None if expected is None else " ".join(str(expected).split())
    fnd = mask(found)
    msg = f"{file}: row {row if row is not None else '-'}, column {column if column else '-'}: {reason}"
    if exp is not None:
        msg += f"; expected {exp}"
    if fnd is not None:
        msg += f"; found {fnd!r}"
    return Problem(severity, code, " ".join(msg.split()), file, row, column, exp, fnd)


class Problems(list[Problem]):
    """Collector bound to one file."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def error(self, code: str, reason: str, **kw: object) -> None:
        self.append(make_problem("error", code, self.file, reason, **kw))  # type: ignore[arg-type]

    def warning(self, code: str, reason: str, **kw: object) -> None:
        self.append(make_problem("warning", code, self.file, reason, **kw))  # type: ignore[arg-type]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self)
