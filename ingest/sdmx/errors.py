"""Errors of the SDMX decoder: one line each, fit for a log or a CLI."""

from __future__ import annotations

from ingest.eurostat.errors import one_line


class SdmxError(ValueError):
    """A body is not SDMX data this decoder can read (format, structure, a value), said in one line."""

    def __init__(self, problem: str) -> None:
        self.problem = one_line(problem)
        super().__init__(self.problem)
