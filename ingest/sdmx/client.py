"""HTTP client of any SDMX 2.1 REST web service: ``GET <base_url>/data/<flow>/<key>``.

The Eurostat client's transport, reused: bounded bodies (``catalogue.yml`` ``sources.sdmx.max_body_bytes``), bounded
jittered retries of transient failures (5xx, resets, timeouts, truncated bodies, HTML outage pages), and every body
handed to ``on_response`` before it is inspected, so the caller archives every byte. What an answer *means* is the
provider's: an HTTP 4xx (SDMX's 404 "no results found" included) is a payload error carrying the body's first
line; anything else is accepted and left to the decoder (:func:`ingest.sdmx.decode.decode_sdmx`) and the gate.
"""

from __future__ import annotations

import requests

from ingest.archive import Received
from ingest.config import SdmxDataset, SdmxProvider
from ingest.eurostat.client import EurostatClient, _Transient
from ingest.eurostat.errors import EurostatPayloadError, EurostatUnavailable, one_line

STRUCTURE_ACCEPT = "application/vnd.sdmx.structure+xml;version=2.1"


class SdmxClient(EurostatClient):
    """Client of one SDMX provider (its ``base_url``, ``accept`` header and query ``params``)."""

    def __init__(self, provider: SdmxProvider, **kwargs) -> None:
        if kwargs.get("max_body_bytes") is None:  # catalogue.yml sources.sdmx.max_body_bytes
            from ingest.config import load_catalogue

            kwargs["max_body_bytes"] = int(load_catalogue().limits("sdmx")["max_body_bytes"])
        super().__init__(provider.base_url, **kwargs)
        self.provider = provider
        self.session.headers["Accept"] = provider.accept

    def fetch(self, dataset: SdmxDataset) -> Received:
        """The data message of one dataset (every series its key selects)."""
        url = f"{self.base_url}/data/{dataset.flow}/{dataset.key or 'all'}"
        params = sorted({**self.provider.params, **dataset.params}.items())
        return self._get(url, params, dataset.code, "sdmx")

    def structure(self, dataset: SdmxDataset) -> Received:
        """The data structure definition (DSD) of a dataset's dataflow: ``GET <base_url>/dataflow/<agency>/<id>/
        <version>?references=datastructure`` (SDMX 2.1 REST), as SDMX-ML."""
        ids = [p.strip() for p in dataset.flow.split(",")]
        agency, flow = (ids[0] or "all", ids[1]) if len(ids) > 1 else ("all", ids[0])
        version = ids[2] if len(ids) > 2 and ids[2] else "latest"
        url = f"{self.base_url}/dataflow/{agency}/{flow}/{version}"
        accept = self.session.headers["Accept"]
        self.session.headers["Accept"] = STRUCTURE_ACCEPT
        try:
            return self._get(url, [("references", "datastructure")], dataset.code, "sdmx")
        finally:
            self.session.headers["Accept"] = accept

    def _unreachable(self, reason: str) -> EurostatUnavailable:
        reason = one_line(reason, 160)
        return EurostatUnavailable(
            f"SDMX provider {self.provider.id} is unreachable at {self.base_url}"
            f" ({reason}; {self.max_attempts} attempts)"
        )

    def _emit(self, resp: requests.Response, url: str, body: bytes) -> Received:
        rec = Received(
            body=body, source="sdmx", url=resp.url or url, status=resp.status_code, headers=dict(resp.headers)
        )
        if self.on_response is not None:
            self.on_response(rec)
        return rec

    def _inspect(self, resp: requests.Response, rec: Received, dataset: str, expect: str) -> None:
        status, body = rec.status or 0, rec.body
        if status >= 500 or status in (408, 429):  # server trouble, a request timeout, a rate limit: try again later
            raise _Transient(self._unreachable(f"HTTP {status}"))
        head = body[:512].lstrip().lower()
        if "text/html" in resp.headers.get("Content-Type", "").lower() or head.startswith(
            (b"<!doctype html", b"<html")
        ):
            raise _Transient(EurostatPayloadError(dataset, f"HTTP {status} HTML page, not data", kind="html"))
        if status >= 400:
            first = one_line(body[:300].decode("utf-8", "replace"), 200) or "no body"
            raise EurostatPayloadError(dataset, f"HTTP {status}: {first}", kind="error", status=status)
        if not body.strip():
            raise EurostatPayloadError(dataset, "empty body", kind="empty")
