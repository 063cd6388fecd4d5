"""Errors raised by the Eurostat source. Messages are one line, fit for a log or a CLI."""

from __future__ import annotations


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace to a single line and cut it to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class EurostatError(RuntimeError):
    """Base class of every Eurostat failure."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, 500))


class EurostatPayloadError(EurostatError):
    """A body is not data: error JSON, async warning or envelope, HTML, truncated or empty."""

    def __init__(self, dataset: str | None, problem: str, *, kind: str = "unknown", status: int | None = None) -> None:
        self.dataset = dataset
        self.problem = one_line(problem)
        #: empty, truncated, error, async (warning 413), warning, envelope (SOAP queued), html, unknown,
        #: too_large (a body or its gzip expansion beyond catalogue.yml sources.eurostat limits),
        #: undecodable (data in the right format whose values cannot be statistics, e.g. JSON-stat text values)
        self.kind = kind
        self.status = status
        super().__init__(f"{dataset or 'unknown dataset'}: {self.problem}")


class EurostatUnavailable(EurostatError):
    """Eurostat cannot be reached (DNS, connection refused, repeated 5xx or timeouts) after retries."""


class ExtractionTooBig(EurostatError):
    """Eurostat refused a request as too big (HTTP 413 EXTRACTION_TOO_BIG) and it cannot be split further."""
