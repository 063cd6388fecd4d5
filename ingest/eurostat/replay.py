"""Local replay of the Eurostat API over loopback HTTP, for tests, demos and offline runs.

Serves, from a samples folder: ``/statistics/1.0/data/{dataset}`` (``{dataset}.json``, filtered by any
dimension query parameter and ``sinceTimePeriod``/``untilTimePeriod``), ``/sdmx/2.1/data/{dataset}/…``
(gzip of ``{dataset}.tsv``, or TSV rendered from the JSON), ``/catalogue/toc/txt`` (``toc.txt``),
``/1.0/async/status/{id}`` and ``/1.0/async/data/{id}``. Tests script failures per path prefix with
:meth:`ReplayServer.script` and inspect :attr:`ReplayServer.requests`.
CLI: ``python -m ingest.eurostat.replay --samples DIR --port N`` (default: the bundled samples,
:data:`BUNDLED_SAMPLES`, which ``python -m tools.eurostat_samples`` regenerates).
"""

from __future__ import annotations

import argparse
import gzip
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson

from ingest.config import SAMPLES_DIR

BUNDLED_SAMPLES = SAMPLES_DIR / "eurostat"  # the synthetic samples served in offline mode (tools/eurostat_samples.py)
RESET = "reset"  # close the connection abruptly (TCP RST), no response
TRUNCATE = "truncate"  # send the normal response's headers, then only half of its body, then close

JSON = "application/json"
XML = "application/xml"
GZIP = "application/octet-stream"


@dataclass(frozen=True)
class Reply:
    """A scripted HTTP response."""

    status: int = 200
    content_type: str = JSON
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before answering normally (or with ``then``)."""

    seconds: float
    then: Any = None


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    action: str  # "normal", "scripted", "reset", "truncate", "sleep"


def error_json(status: int, ident: int, label: str) -> bytes:
    """An Eurostat error body."""
    return orjson.dumps({"error": [{"status": status, "id": ident, "label": label}]})


def async_warning() -> bytes:
    return orjson.dumps(
        {
            "warning": {
                "status": 413,
                "label": "ASYNCHRONOUS_RESPONSE. Your request will be treated asynchronously. Please try again later.",
            }
        }
    )


def sync_envelope(ident: str, status: str = "SUBMITTED") -> bytes:
    """The SOAP envelope an SDMX endpoint returns when it queues a big extraction."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Header/><env:Body><ns0:syncResponse xmlns:ns0="http://estat.ec.europa.eu/disschain/soap/extraction">'
        f"<queued><id>{ident}</id><status>{status}</status></queued></ns0:syncResponse></env:Body></env:Envelope>"
    ).encode()


def async_status(ident: str, status: str) -> bytes:
    """The envelope of ``/1.0/async/status/{id}``."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Header/><env:Body><ns0:asyncResponse xmlns:ns0="http://estat.ec.europa.eu/disschain/soap/asynchronous">'
        '<ns1:status xmlns:ns1="http://estat.ec.europa.eu/disschain/asynchronous">'
        f"<ns1:key>{ident}</ns1:key><ns1:status>{status}</ns1:status></ns1:status>"
        "</ns0:asyncResponse></env:Body></env:Envelope>"
    ).encode()


def filter_jsonstat(doc: dict, query: dict[str, list[str]]) -> dict:
    """Subset a JSON-stat document by dimension filters (``geo=…``, ``unit=…``) and time bounds."""
    ids: list[str] = doc["id"]
    sizes: list[int] = doc["size"]
    lower = {k.lower(): v for k, v in query.items()}
    keep_pos: list[np.ndarray] = []
    new_dims: dict[str, Any] = {}
    for d in ids:
        cat = doc["dimension"][d]["category"]
        index = cat["index"] if isinstance(cat["index"], dict) else {c: i for i, c in enumerate(cat["index"])}
        codes = sorted(index, key=index.get)
        wanted = codes
        if d.lower() in lower:
            asked = set(lower[d.lower()])
            wanted = [c for c in codes if c in asked]
        if d.lower() in ("time", "time_period"):
            since, until = lower.get("sincetimeperiod", [None])[0], lower.get("untiltimeperiod", [None])[0]
            wanted = [c for c in wanted if (since is None or c >= since) and (until is None or c <= until)]
        keep_pos.append(np.array([index[c] for c in wanted], dtype=np.int64))
        dim = dict(doc["dimension"][d])
        dim["category"] = {
            "index": {c: i for i, c in enumerate(wanted)},
            "label": {c: cat.get("label", {}).get(c, c) for c in wanted},
        }
        new_dims[d] = dim
    new_sizes = [len(k) for k in keep_pos]
    remap = []
    for k, n in zip(keep_pos, sizes, strict=True):
        m = np.full(n, -1, dtype=np.int64)
        m[k] = np.arange(len(k))
        remap.append(m)

    def sub(part: Any) -> dict[str, Any]:
        if not part or not isinstance(part, dict):
            return {}
        pos = np.array([int(k) for k in part], dtype=np.int64)
        coords = np.unravel_index(pos, sizes)
        new = [remap[i][c] for i, c in enumerate(coords)]
        ok = np.all([c >= 0 for c in new], axis=0) if new else np.zeros(0, bool)
        flat = np.ravel_multi_index(tuple(c[ok] for c in new), new_sizes) if ok.any() else np.empty(0, np.int64)
        vals = [v for v, keep in zip(part.values(), ok, strict=True) if keep]
        return {str(int(p)): v for p, v in zip(flat, vals, strict=True)}

    out = dict(doc)
    out.update(size=new_sizes, dimension=new_dims, value=sub(doc.get("value")), status=sub(doc.get("status")))
    return out


def jsonstat_to_tsv(doc: dict[str, Any]) -> bytes:
    """Render a JSON-stat document (time last) as SDMX 2.1 TSV, series in cube order, empty series omitted."""
    ids, sizes = doc["id"], doc["size"]
    codes = [
        sorted(doc["dimension"][d]["category"]["index"], key=doc["dimension"][d]["category"]["index"].get) for d in ids
    ]
    values, status = doc.get("value", {}), doc.get("status", {})
    n_t = sizes[-1]
    head = ",".join(ids[:-1]) + "\\TIME_PERIOD\t" + "\t".join(f"{t} " for t in codes[-1])
    lines = [head]
    for s, series in enumerate(np.ndindex(*sizes[:-1])):
        cells, any_data = [], False
        for t in range(n_t):
            k = str(s * n_t + t)
            v, f = values.get(k), status.get(k, "")
            f = f.replace("|", "")
            any_data |= v is not None or bool(f)
            cells.append(f"{':' if v is None else v} {f}")
        if any_data:
            lines.append(",".join(codes[i][p] for i, p in enumerate(series)) + "\t" + "\t".join(cells))
    return ("\n".join(lines) + "\n").encode()


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server that takes a client hanging up (a bounded read stopping early, a timeout, a reset) as
    the client's business: no traceback on stderr, which would land in a run's output."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # reset, aborted, broken pipe
            return
        super().handle_error(request, client_address)


class ReplayServer:
    """Eurostat look-alike on ``127.0.0.1:<port>`` serving ``samples_dir``; use as a context manager."""

    def __init__(self, samples_dir: Path | None = None, *, port: int = 0, max_cells: int | None = None) -> None:
        self.samples_dir = Path(samples_dir) if samples_dir is not None else None
        self.max_cells = max_cells  # answer HTTP 413 EXTRACTION_TOO_BIG above this many cells
        self.requests: list[Recorded] = []
        self._scripts: dict[str, list[Any]] = {}
        self._async: dict[str, str] = {}
        self._lock = threading.Lock()
        self._httpd = LoopbackServer(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ control
    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReplayServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="eurostat-replay", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, path_prefix: str, responses: Iterable[Any]) -> None:
        """Queue responses for requests whose path starts with ``path_prefix`` (consumed in order).

        A response is a :class:`Reply`, a tuple ``(status, content_type, body[, headers])``, :data:`RESET`,
        :data:`TRUNCATE`, :class:`Sleep` or ``None`` (answer normally). Once the queue is empty the server
        answers normally.
        """
        with self._lock:
            self._scripts.setdefault(path_prefix, []).extend(responses)

    def register_async(self, ident: str, dataset: str) -> None:
        """Make ``/1.0/async/data/{ident}`` serve the TSV of ``dataset``."""
        with self._lock:
            self._async[ident] = dataset

    def calls(self, path_prefix: str = "/") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    # ------------------------------------------------------------------------------------------ serving
    def _next_scripted(self, path: str) -> tuple[bool, Any]:
        with self._lock:
            best = max((p for p in self._scripts if path.startswith(p) and self._scripts[p]), key=len, default=None)
            if best is None:
                return False, None
            return True, self._scripts[best].pop(0)

    def normal(self, path: str, query: dict[str, list[str]]) -> Reply:
        """The normal (non-scripted) answer for a path."""
        parts = [p for p in path.split("/") if p]
        if path.startswith("/statistics/1.0/data/") and len(parts) >= 4:
            return self._jsonstat(parts[3], query)
        if path.startswith("/sdmx/2.1/data/") and len(parts) >= 4:
            return self._tsv(parts[3])
        if path.startswith("/catalogue/toc/txt"):
            toc = self._file("toc.txt")
            if toc is None:
                return Reply(404, "text/plain", b"no toc.txt in samples")
            return Reply(200, "text/plain; charset=utf-8", toc)
        if path.startswith("/1.0/async/status/") and len(parts) >= 4:
            known = parts[3] in self._async
            return Reply(200, XML, async_status(parts[3], "AVAILABLE" if known else "UNKNOWN_REQUEST"))
        if path.startswith("/1.0/async/data/") and len(parts) >= 4:
            ds = self._async.get(parts[3])
            if ds is None:
                return Reply(404, XML, async_status(parts[3], "UNKNOWN_REQUEST"))
            return self._tsv(ds)
        return Reply(404, "text/html", b"<html><head><title>Not Found</title></head><body>404</body></html>")

    def _file(self, name: str) -> bytes | None:
        if self.samples_dir is None:
            return None
        path = self.samples_dir / name
        return path.read_bytes() if path.is_file() else None

    def _jsonstat(self, dataset: str, query: dict[str, list[str]]) -> Reply:
        raw = self._file(f"{dataset}.json")
        if raw is None:
            return Reply(404, JSON, error_json(404, 100, f"No results found. Dataset {dataset} unknown."))
        doc = orjson.loads(raw)
        filters = {k: v for k, v in query.items() if k.lower() not in ("lang", "format")}
        sub = filter_jsonstat(doc, filters)
        cells = int(np.prod(sub["size"]))
        if self.max_cells is not None and cells > self.max_cells:
            label = (
                f"EXTRACTION_TOO_BIG: the requested extraction is too big, estimated {cells} values, "
                f"max authorised is {self.max_cells}"
            )
            return Reply(413, JSON, error_json(413, 413, label))
        if sub["value"] == {} and sub["status"] == {}:
            return Reply(404, JSON, error_json(404, 100, "No results found"))
        return Reply(200, JSON, orjson.dumps(sub))

    def _tsv(self, dataset: str) -> Reply:
        raw = self._file(f"{dataset}.tsv")
        if raw is None:
            doc = self._file(f"{dataset}.json")
            if doc is None:
                return Reply(404, "text/plain", b"Dataset not found")
            raw = jsonstat_to_tsv(orjson.loads(doc))
        return Reply(
            200,
            GZIP,
            gzip.compress(raw, mtime=0),
            {"Content-Disposition": f'attachment; filename="{dataset}.tsv.gz"'},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                split = urlsplit(self.path)
                path, query = split.path, parse_qs(split.query, keep_blank_values=True)
                scripted, action = server._next_scripted(path)
                name = "scripted" if scripted and action is not None else "normal"
                if isinstance(action, Sleep):
                    name = "sleep"
                elif action in (RESET, TRUNCATE):
                    name = action
                with server._lock:
                    server.requests.append(Recorded("GET", path, query, name))
                if isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    action = action.then
                if action == RESET:
                    self._reset()
                    return
                if action == TRUNCATE or action is None or not scripted:
                    reply = server.normal(path, query)
                elif isinstance(action, Reply):
                    reply = action
                else:
                    reply = Reply(*action)
                self._send(reply, truncate=action == TRUNCATE)

            def _send(self, reply: Reply, truncate: bool = False) -> None:
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    if truncate:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
                    self.wfile.flush()
                    if truncate:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

            def _reset(self) -> None:
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

        return Handler


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve Eurostat-shaped samples over loopback HTTP.")
    parser.add_argument("--samples", type=Path, default=None, help="folder of {dataset}.json / .tsv / toc.txt")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-cells", type=int, default=None, help="answer 413 EXTRACTION_TOO_BIG above this")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.samples is None:
        args.samples = BUNDLED_SAMPLES
    server = ReplayServer(args.samples, port=args.port, max_cells=args.max_cells)
    with server:
        print(server.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
