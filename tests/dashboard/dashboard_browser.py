"""Headless Chromium driven through the DevTools protocol (CDP) for the dashboard tests.

No Selenium / Playwright: Debian's ``chromium`` is started with ``--remote-debugging-port=0`` and driven over
a websocket with the ``websockets`` package (already in the lock through uvicorn). For each page it records
JavaScript exceptions, console errors / warnings, browser log errors and every network request, waits until
every ``.chart`` container reports ``data-rendered``, measures what each chart drew and takes a full-page PNG.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

# Per chart container: did vega-embed finish, how many data-mark items (not axes / legends) did it draw.
CHART_STATUS_JS = r"""
(() => {
  const charts = Array.from(document.querySelectorAll('.chart'));
  return JSON.stringify(charts.map((c) => {
    const svg = c.querySelector('svg');
    const canvas = c.querySelector('canvas');
    let marks = 0, width = 0, height = 0;
    if (svg) {
      marks = svg.querySelectorAll('g.role-mark > *').length;
      const box = svg.getBoundingClientRect();
      width = box.width; height = box.height;
    } else if (canvas) {
      marks = canvas.width * canvas.height > 0 ? 1 : 0;
      width = canvas.width; height = canvas.height;
    }
    return {id: c.id, rendered: c.getAttribute('data-rendered'), svg: !!svg, canvas: !!canvas,
            marks: marks, width: width, height: height, text: c.textContent.slice(0, 200)};
  }));
})()
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    url: str
    charts: list[dict] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    values: dict = field(default_factory=dict)

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "assert")]

    @property
    def console_warnings(self) -> list[str]:
        return [text for kind, text in self.console if kind == "warning"]

    @property
    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:", "blob:"))]

    def problems(self) -> list[str]:
        """Everything that should not happen on a healthy page (empty list = fine)."""
        out = [f"exception: {e}" for e in self.exceptions]
        out += [f"console.error: {e}" for e in self.console_errors]
        out += [f"console.warn: {e}" for e in self.console_warnings]
        out += [f"browser log: {e}" for e in self.log_errors]
        out += [f"network request: {u}" for u in self.external_requests]
        for c in self.charts:
            if c["rendered"] != "true" or not (c["svg"] or c["canvas"]) or c["marks"] < 1 or c["width"] < 10:
                out.append(f"chart not drawn: {c}")
        return out


class Chromium:
    """One headless Chromium process; :meth:`load` opens pages one after another in a single tab."""

    def __init__(self, binary: str, profile_dir: Path, width: int = 1400, height: int = 2000):
        self.width, self.height = width, height
        profile_dir.mkdir(parents=True, exist_ok=True)
        (profile_dir / "DevToolsActivePort").unlink(missing_ok=True)  # a stale one from a reused profile
        self.log_file = (profile_dir / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile_dir}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._ws = None
        self._stack = ExitStack()
        self._id = 0
        self._events: list[dict] = []
        try:
            self.port = self._wait_port(profile_dir / "DevToolsActivePort")
            self._ws = self._stack.enter_context(connect(self._page_ws_url(), max_size=None, open_timeout=20))
            for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
                self.call(method)
        except BaseException:
            self.close()
            raise

    def _wait_port(self, port_file: Path, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}; see {self.log_file.name}")
            try:
                return int(port_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port in time")

    def _page_ws_url(self) -> str:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as resp:  # noqa: S310
                    targets = json.load(resp)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no page target in {targets}")
            time.sleep(0.1)

    # -- protocol
    def call(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        self._id += 1
        msg_id = self._id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)

    def _pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self._events.append(json.loads(self._ws.recv(timeout=left)))
            except TimeoutError:
                return

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    # -- pages
    def load(self, path: Path, screenshot: Path | None = None, timeout: float = 60, extra: dict | None = None):
        """Open a file, wait for the charts, collect problems; optionally save a full-page PNG."""
        url = path.resolve().as_uri()
        self._events.clear()
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout}s")
            self._pump(0.2)
        charts: list[dict] = []
        while time.monotonic() < deadline:
            charts = json.loads(self.evaluate(CHART_STATUS_JS) or "[]")
            if all(c["rendered"] for c in charts):
                break
            self._pump(0.2)
        self._pump(0.3)  # late console messages
        report = PageReport(url=url, charts=charts)
        for expr_name, expr in (extra or {}).items():
            report.values[expr_name] = self.evaluate(expr)
        for e in self._events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                report.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                report.console.append((params.get("type", ""), text))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                report.log_errors.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                report.requests.append(params.get("request", {}).get("url", ""))
        if screenshot is not None:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            height = int(min(max(size["height"], self.height), 16000))
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            self._pump(0.3)
            shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        return report

    def close(self) -> None:
        try:
            self._stack.close()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log_file.close()
