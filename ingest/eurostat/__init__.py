"""Eurostat source: thin HTTP client, fast decoders (JSON-stat 2.0, SDMX TSV/CSV), replay server, samples."""

from ingest.eurostat.errors import EurostatError, EurostatPayloadError, EurostatUnavailable, ExtractionTooBig

__all__ = ["EurostatError", "EurostatPayloadError", "EurostatUnavailable", "ExtractionTooBig"]
