"""Thin Eurostat HTTP client: Statistics API (JSON-stat), SDMX 2.1 TSV (async extraction), table of contents.

Every body received (data, error bodies, envelopes, poll statuses) goes to ``on_response`` *before* it is
inspected, so the caller can archive every byte. Transient failures (5xx, resets, timeouts, truncated bodies,
HTML outage pages, "sorry" redirects) are retried with bounded, jittered exponential backoff (tenacity).
All waits are multiplied by ``backoff_scale`` (default: env ``EUROSTAT_BACKOFF_SCALE`` or 1): tests run fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_exponential_jitter,
    wait_random,
)

from ingest.archive import Received
from ingest.eurostat.envelope import check_json_doc, envelope_info, not_data_xml, sniff, unwrap
from ingest.eurostat.errors import (
    EurostatError,
    EurostatPayloadError,
    EurostatUnavailable,
    ExtractionTooBig,
    one_line,
)
from ingest.eurostat.toc import TocEntry, parse_toc

_SMALL_JSON = 1 << 20  # bodies below this are fully parsed to look for error/warning objects
_POLLING = ("SUBMITTED", "PROCESSING", "QUEUED", "RUNNING")
_MAX_RESUBMITS = 3


@dataclass(frozen=True)
class BulkReceived:
    """A bulk file as stored: its sha256 and size in the archive, the HTTP status and URL."""

    sha256: str
    size: int
    status: int
    url: str
    cut: bool = False  # the body went on past the limit: what was stored is its beginning


class _BodyError(OSError):
    """Reading the HTTP body failed (the connection dropped mid-body)."""


class _BoundedBody:
    """The raw HTTP body (as received: no content decoding) as a file object that ends after ``limit`` bytes
    (``over`` is then set) and turns a dropped connection into :class:`_BodyError`."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw, self.left, self.over = raw, int(limit), False

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.over = bool(self.raw.read(1))
            return b""
        want = self.left if size is None or size < 0 else min(size, self.left)
        try:
            data = self.raw.read(want, decode_content=False)
        except Exception as exc:  # noqa: BLE001 - urllib3's protocol/timeout errors
            raise _BodyError(str(exc)) from exc
        self.left -= len(data)
        return data


class _Transient(Exception):
    """A failure worth retrying; ``final`` is what to raise when attempts run out."""

    def __init__(self, final: EurostatError) -> None:
        super().__init__(str(final))
        self.final = final


def _env_scale() -> float:
    try:
        return float(os.environ.get("EUROSTAT_BACKOFF_SCALE", "1"))
    except ValueError:
        return 1.0


class EurostatClient:
    """Client for the Eurostat dissemination API rooted at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        on_response: Callable[[Received], None] | None = None,
        timeout: float = 60,
        max_attempts: int = 5,
        poll_initial: float = 10.0,
        poll_max: float = 60.0,
        poll_budget: float = 900.0,
        session: requests.Session | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        backoff_scale: float | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if max_body_bytes is None:  # catalogue.yml sources.eurostat.max_body_bytes
            from ingest.config import load_catalogue

            max_body_bytes = int(load_catalogue().limits("eurostat")["max_body_bytes"])
        self.max_body_bytes = int(max_body_bytes)
        self.on_response = on_response
        self.timeout = timeout
        self.max_attempts = max(1, int(max_attempts))
        self.scale = _env_scale() if backoff_scale is None else float(backoff_scale)
        self.poll_initial, self.poll_max, self.poll_budget = poll_initial, poll_max, poll_budget
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "ss4gl-ingest (+https://github.com/ss4gl)")

    # ------------------------------------------------------------------------------------------ public
    def fetch_jsonstat(
        self, dataset: str, filters: dict[str, list[str]], geo: list[str], since: str | None = None
    ) -> list[Received]:
        """JSON-stat body/bodies of ``dataset``; on HTTP 413 EXTRACTION_TOO_BIG the geo list is halved."""
        params: list[tuple[str, str]] = [("lang", "EN")]
        params += [(k, str(v)) for k, vs in filters.items() for v in vs]
        params += [("geo", g) for g in geo]
        if since:
            params.append(("sinceTimePeriod", str(since)))
        try:
            return [self._jsonstat_once(dataset, params)]
        except ExtractionTooBig:
            if len(geo) < 2:
                raise
            half = len(geo) // 2
            return self.fetch_jsonstat(dataset, filters, geo[:half], since) + self.fetch_jsonstat(
                dataset, filters, geo[half:], since
            )

    def fetch_tsv(self, dataset: str, key: str = "", start_period: str | None = None) -> Received:
        """Gzipped SDMX 2.1 TSV of ``dataset``; follows asynchronous extraction (poll status, then data)."""
        url = f"{self.base_url}/sdmx/2.1/data/{dataset}/{key}"
        params = [("format", "TSV"), ("compressed", "true")]
        if start_period:
            params.append(("startPeriod", str(start_period)))
        deadline = time.monotonic() + self.poll_budget
        for _ in range(_MAX_RESUBMITS + 1):
            rec = self._get(url, params, dataset, expect="tsv")
            kind = sniff(unwrap(rec.body, dataset))
            if kind != "xml":
                return rec
            plain = unwrap(rec.body, dataset)
            if b"syncResponse" not in plain[:4000]:
                raise not_data_xml(plain, dataset, "xml")  # SOAP fault or other XML, not an envelope
            ident, status = envelope_info(plain)
            if not ident:
                raise EurostatPayloadError(dataset, "SDMX envelope without a request id", kind="envelope")
            status = self._poll(dataset, ident, status, deadline)
            if status == "AVAILABLE":
                data = self._get(f"{self.base_url}/1.0/async/data/{ident}", [], dataset, expect="tsv")
                if sniff(unwrap(data.body, dataset)) == "xml":
                    raise EurostatPayloadError(dataset, f"async data {ident} is an envelope, not data", kind="envelope")
                return data
            # EXPIRED / UNKNOWN_REQUEST: submit again
        raise EurostatPayloadError(
            dataset, f"asynchronous extraction expired {_MAX_RESUBMITS + 1} times", kind="envelope"
        )

    def fetch_bulk(
        self,
        dataset: str,
        store: Callable[..., Any],
        max_bytes: int,
        on_stored: Callable[[BulkReceived], None] | None = None,
    ) -> BulkReceived:
        """Eurostat's whole-dataset SDMX-TSV file (gzipped), streamed into ``store`` (``Archive.put_stream``'s
        signature: the body as a file object, plus ``source``, ``url``, ``status``, ``headers``), never held in
        memory. Every body is stored, an HTTP 5xx answer's too (``on_stored`` is called for each), then the
        connection and HTTP 5xx are retried like every request; past ``max_bytes`` the reading stops (the bytes read
        so far are stored as received, ``cut`` set). Whether the body is data is the reader's business
        (:mod:`ingest.eurostat.bulk`)."""
        url = f"{self.base_url}/sdmx/2.1/data/{dataset}"
        params = [("format", "TSV"), ("compressed", "true")]
        return self._retried(self._bulk_once, url, params, dataset, store, max_bytes, on_stored)

    def _bulk_once(
        self,
        url: str,
        params: list[tuple[str, str]],
        dataset: str,
        store: Callable[..., Any],
        max_bytes: int,
        on_stored: Callable[[BulkReceived], None] | None,
    ) -> BulkReceived:
        resp = self._open(url, params)
        with resp:
            reader = _BoundedBody(resp.raw, max_bytes)
            try:
                sha, size = store(
                    reader, source="eurostat", url=resp.url or url, status=resp.status_code, headers=dict(resp.headers)
                )
            except (requests.exceptions.RequestException, OSError) as exc:
                if isinstance(exc, OSError) and not isinstance(exc, _BodyError):
                    raise
                err = EurostatPayloadError(dataset, f"truncated body ({_reason(exc)})", kind="truncated")
                raise _Transient(err) from exc
        got = BulkReceived(sha, size, resp.status_code, resp.url or url, cut=reader.over)
        if on_stored is not None:
            on_stored(got)
        if resp.status_code >= 500:
            raise _Transient(self._unreachable(f"HTTP {resp.status_code}"))
        return got

    def toc(self) -> dict[str, TocEntry]:
        """Table of contents (``/catalogue/toc/txt``) keyed by dataset code."""
        rec = self._get(f"{self.base_url}/catalogue/toc/txt", [("lang", "en")], "toc", expect="text")
        return parse_toc(rec.body)

    # ------------------------------------------------------------------------------------------ internals
    def _jsonstat_once(self, dataset: str, params: list[tuple[str, str]]) -> Received:
        url = f"{self.base_url}/statistics/1.0/data/{dataset}"
        budget = self.poll_budget

        def still_async(exc: BaseException) -> bool:
            return isinstance(exc, EurostatPayloadError) and exc.kind == "async"

        retrying = Retrying(
            retry=retry_if_exception(still_async),
            wait=wait_exponential(
                multiplier=self.poll_initial * self.scale,
                min=self.poll_initial * self.scale,
                max=self.poll_max * self.scale,
            )
            + wait_random(0, self.poll_initial * self.scale / 4),
            stop=stop_after_delay(budget),
            reraise=True,
        )
        try:
            return retrying(self._get, url, params, dataset, "json")
        except EurostatPayloadError as exc:
            if exc.kind == "async":
                raise EurostatPayloadError(
                    dataset,
                    f"still asynchronous after {budget:.0f} s ({exc.problem})",
                    kind="async",
                    status=exc.status,
                ) from exc
            raise

    def _poll(self, dataset: str, ident: str, status: str | None, deadline: float) -> str:
        """Poll ``/1.0/async/status/{id}`` until it leaves SUBMITTED/PROCESSING; return the final status."""
        if status not in _POLLING:
            status = None
        remaining = max(0.0, deadline - time.monotonic())

        def check() -> str:
            rec = self._get(f"{self.base_url}/1.0/async/status/{ident}", [], dataset, expect="xml")
            return envelope_info(unwrap(rec.body, dataset))[1] or "UNKNOWN"

        retrying = Retrying(
            retry=retry_if_result(lambda s: s in _POLLING),
            wait=wait_exponential(
                multiplier=self.poll_initial * self.scale,
                min=self.poll_initial * self.scale,
                max=self.poll_max * self.scale,
            )
            + wait_random(0, self.poll_initial * self.scale / 4),
            stop=stop_after_delay(remaining),
        )
        try:
            if status in _POLLING:  # first wait before the first poll
                time.sleep(min(self.poll_initial * self.scale, remaining))
            return retrying(check)
        except RetryError as exc:
            raise EurostatPayloadError(
                dataset,
                f"asynchronous extraction {ident} not available after {self.poll_budget:.0f} s",
                kind="envelope",
            ) from exc

    def _get(self, url: str, params: list[tuple[str, str]], dataset: str, expect: str) -> Received:
        """GET with bounded jittered retries of transient failures; return the accepted body."""
        return self._retried(self._attempt, url, params, dataset, expect)

    def _retried(self, attempt: Callable[..., Any], *args: Any) -> Any:
        """``attempt(*args)`` with bounded jittered retries of transient failures (``_Transient``); the last
        failure's own error when every attempt failed."""
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial * self.scale,
                max=self.backoff_max * self.scale,
                jitter=self.backoff_initial * self.scale,
            ),
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
        )
        try:
            return retrying(attempt, *args)
        except _Transient as exc:
            raise exc.final from exc

    def _unreachable(self, reason: str) -> EurostatUnavailable:
        reason = one_line(reason, 160)
        return EurostatUnavailable(
            f"Eurostat is unreachable at {self.base_url} ({reason}; {self.max_attempts} attempts)"
        )

    def _open(self, url: str, params: list[tuple[str, str]]) -> requests.Response:
        """A streamed GET; no connection or a timeout before the answer is a transient failure (retried)."""
        try:
            return self.session.get(url, params=params, timeout=self.timeout, stream=True)
        except requests.exceptions.Timeout as exc:
            raise _Transient(self._unreachable(f"timed out after {self.timeout} s")) from exc
        except requests.exceptions.ConnectionError as exc:
            raise _Transient(self._unreachable(_reason(exc))) from exc

    def _attempt(self, url: str, params: list[tuple[str, str]], dataset: str, expect: str) -> Received:
        chunks: list[bytes] = []
        resp = self._open(url, params)
        size = 0
        try:
            with resp:
                for chunk in resp.iter_content(chunk_size=1 << 20):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_body_bytes:  # stop reading: the connection is dropped on close
                        break
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            problem = f"timed out after {self.timeout} s" if isinstance(exc, requests.exceptions.Timeout) else ""
            self._emit(resp, url, b"".join(chunks))  # archive the partial body too
            err = EurostatPayloadError(dataset, f"truncated body ({problem or _reason(exc)})", kind="truncated")
            raise _Transient(err) from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            self._emit(resp, url, b"".join(chunks))
            err = EurostatPayloadError(dataset, f"truncated body ({_reason(exc)})", kind="truncated")
            raise _Transient(err) from exc
        rec = self._emit(resp, url, b"".join(chunks))  # a body cut at the limit is archived as received too
        if size > self.max_body_bytes:  # not retried: the same request would send as much again
            raise EurostatPayloadError(
                dataset, f"body exceeds {self.max_body_bytes} bytes (stopped reading)", kind="too_large"
            )
        self._inspect(resp, rec, dataset, expect)
        return rec

    def _emit(self, resp: requests.Response, url: str, body: bytes) -> Received:
        rec = Received(
            body=body,
            source="eurostat",
            url=resp.url or url,
            status=resp.status_code,
            headers=dict(resp.headers),
        )
        if self.on_response is not None:
            self.on_response(rec)
        return rec

    def _inspect(self, resp: requests.Response, rec: Received, dataset: str, expect: str) -> None:
        """Accept a body, or raise _Transient (outage, truncation), ExtractionTooBig, EurostatPayloadError."""
        status, body = rec.status or 0, rec.body
        ctype = resp.headers.get("Content-Type", "").lower()
        final = urlsplit(resp.url or "")
        if resp.history and (final.netloc != urlsplit(self.base_url).netloc or "sorry" in final.geturl()):
            raise _Transient(self._unreachable(f"redirected to {final.scheme}://{final.netloc}{final.path}"))
        if status >= 500:
            if status == 500 and body.lstrip()[:1] == b"{":
                _json_problem(body, dataset)  # a JSON error 500 is Eurostat's answer, not an outage
            raise _Transient(self._unreachable(f"HTTP {status}"))
        try:
            plain = unwrap(body, dataset)
        except EurostatPayloadError as exc:
            if exc.kind == "truncated":
                raise _Transient(exc) from exc
            raise
        kind = "html" if "text/html" in ctype else sniff(plain)
        if kind == "html":
            err = EurostatPayloadError(dataset, f"HTTP {status} HTML page, not data", kind="html")
            raise _Transient(err)
        if status == 413 or b"EXTRACTION_TOO_BIG" in plain[:2000]:
            raise ExtractionTooBig(
                f"{dataset}: extraction too big ({one_line(plain[:300].decode('utf-8', 'replace'))})"
            )
        if kind == "json":
            _json_problem(plain, dataset)
        if status >= 400:
            raise EurostatPayloadError(
                dataset,
                f"HTTP {status}: {plain[:200].decode('utf-8', 'replace')}",
                kind="error",
                status=status,
            )
        if expect == "json" and kind != "json":
            raise EurostatPayloadError(dataset, f"expected JSON-stat, got {kind} ({ctype or 'no content type'})")
        if expect == "json" and plain.rstrip()[-1:] != b"}":
            raise _Transient(EurostatPayloadError(dataset, "truncated JSON body", kind="truncated"))
        if expect == "tsv" and kind not in ("tsv", "xml", "sdmx-csv"):
            raise EurostatPayloadError(dataset, f"expected SDMX TSV, got {kind} ({ctype or 'no content type'})")
        if expect == "xml" and kind != "xml":
            raise EurostatPayloadError(dataset, f"expected an async status envelope, got {kind}")


def _json_problem(body: bytes, dataset: str) -> None:
    """Raise for error / warning JSON bodies; accept JSON-stat."""
    if len(body) <= _SMALL_JSON:
        try:
            doc: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Transient(EurostatPayloadError(dataset, f"truncated JSON body ({exc})", kind="truncated")) from exc
        check_json_doc(doc, dataset)
        return
    head = body[:200].replace(b" ", b"")
    if head.startswith((b'{"error"', b'{"warning"')):
        check_json_doc(orjson.loads(body), dataset)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, short (e.g. 'Connection refused')."""
    seen = exc
    while seen.__cause__ is not None or (seen.args and isinstance(seen.args[0], BaseException)):
        seen = seen.__cause__ if seen.__cause__ is not None else seen.args[0]
    text = str(seen)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "Connection reset",
        "Connection aborted",
        "IncompleteRead",
        "Remote end closed",
    ):
        if marker in str(exc) or marker in text:
            return marker
    return one_line(text or type(seen).__name__, 120)
