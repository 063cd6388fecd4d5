"""Problems found in a survey file: one line each, naming file, row, column, expected and found."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ingest.surveys.privacy import echo, scrub

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
    """Build a problem whose message is one line and never holds what a respondent typed.

    ``found`` is echoed only when safe (``privacy.echo``): a number, a boolean, a date, or a value the caller
    wrapped in ``privacy.known`` (a code from the contract/codebook lists, an inbox folder name, a description
    the parser wrote itself). Any other value is described by its shape ("text of 7 characters"). File and
    column names are scrubbed of e-mail addresses and phone numbers."""
    file = scrub(file)
    column = None if column is None else scrub(str(column))
    exp = None if expected is None else " ".join(str(expected).split())
    fnd, echoed = echo(found)
    msg = f"{file}: row {row if row is not None else '-'}, column {column if column else '-'}: {reason}"
    if exp is not None:
        msg += f"; expected {exp}"
    if fnd is not None:
        msg += f"; found {fnd!r}" if echoed else f"; found {fnd}"
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
