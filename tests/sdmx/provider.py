"""A loopback SDMX web service for tests: real HTTP on 127.0.0.1, scripted answers per path."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

from ingest.eurostat.replay import LoopbackServer


class Provider:
    """An SDMX web service on 127.0.0.1: ``/data/<flow>/<key>`` -> (status, content type, body or a function making
    it); 404 otherwise."""

    def __init__(self, routes: dict[str, tuple[int, str, bytes]]) -> None:
        self.routes, self.paths = routes, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.paths.append(self.path)
                status, ctype, body = owner.routes.get(
                    self.path.split("?")[0], (404, "text/plain", b"No Results Found")
                )
                body = body() if callable(body) else body  # a fresh answer per request (e.g. its header)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = LoopbackServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/rest"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
