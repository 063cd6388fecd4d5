"""on_failure_callback: one readable alert line, always logged, posted to ALERT_WEBHOOK_URL over real HTTP."""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from ingest.orchestration import alert


class _Ti:
    dag_id, task_id, try_number = "ss4gl_nightly", "eurostat.validate", 1


def test_alert_logs_one_line_and_posts_webhook(monkeypatch, caplog):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        exc = RuntimeError("2 eurostat batch(es) quarantined, nothing from them loaded:\ndetails…")
        with caplog.at_level(logging.ERROR, logger="ss4gl"):
            alert({"task_instance": _Ti(), "exception": exc, "run_id": "scheduled__2026-11-26"})
    finally:
        server.shutdown()
    lines = [r.getMessage() for r in caplog.records if r.name == "ss4gl"]
    assert len(lines) == 1
    assert lines[0].startswith("ALERT ss4gl_nightly.eurostat.validate failed (run scheduled__2026-11-26, try 1)")
    assert "\n" not in lines[0] and "quarantined" in lines[0]
    assert received == [{"text": lines[0]}]


def test_alert_without_webhook_only_logs(monkeypatch, caplog):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    with caplog.at_level(logging.ERROR, logger="ss4gl"):
        alert({"task_instance": _Ti(), "exception": ValueError("bad"), "run_id": "r"})
    assert [r.getMessage() for r in caplog.records if r.name == "ss4gl"][0].endswith(": bad")


def test_the_dbt_build_gets_a_nightlys_date_as_environment_and_a_backfills_as_vars(monkeypatch):
    """Cosmos' interceptor: a nightly passes no vars (dbt's partial parse stays valid) and its logical date as
    SS4GL_LOGICAL_DATE, in this process (dbtRunner) and in the operator's environment (a dbt subprocess)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from ingest.orchestration import dbt_run_vars

    monkeypatch.delenv("SS4GL_LOGICAL_DATE", raising=False)
    when = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    nightly = SimpleNamespace(vars=None, env={"KEEP": "1"})
    dbt_run_vars({"run_id": "scheduled__x", "logical_date": when, "dag_run": SimpleNamespace(conf={})}, nightly)
    assert nightly.vars == {} and nightly.env == {"KEEP": "1", "SS4GL_LOGICAL_DATE": "2026-11-21"}
    assert os.environ["SS4GL_LOGICAL_DATE"] == "2026-11-21"
    backfill = SimpleNamespace(vars=None, env=None)
    run = SimpleNamespace(conf={}, run_type="backfill")
    dbt_run_vars({"run_id": "backfill__x", "logical_date": when, "dag_run": run}, backfill)
    assert backfill.vars == {"logical_date": "2026-11-21", "schema_prefix": "asof_"}
