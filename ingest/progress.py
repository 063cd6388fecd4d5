"""Live progress of a local run (``ss4gl run``, ``ss4gl backfill``, ``make run``): one line per task as it ends.

``dag.test`` runs the tasks in this process with their output sent to the run's log file, so progress is read from
where Airflow records it: a thread polls the local metadata database (SQLite, read-only) for the task instances of
the run, and writes to the terminal the process had before the output was redirected. A line per ended task: its
state, seconds and, where it moved data, rows (from its return value); the run's elapsed time; on later runs an
estimate from the previous run (kept in the state folder). On a terminal the lines are coloured (rich); otherwise
(CI, a pipe, a log) plain text.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

ENDED = ("success", "failed", "skipped", "upstream_failed", "removed")
MARKS = {"success": "ok", "failed": "FAILED", "skipped": "skipped", "upstream_failed": "not-run", "removed": "removed"}
STYLES = {"success": "green", "failed": "bold red", "skipped": "dim", "upstream_failed": "yellow", "removed": "dim"}
# Keys of a task's return value that count data moved (the stages return dicts with these).
ROW_KEYS = ("rows", "rows_loaded", "loaded_rows")


def _rows(value) -> int | None:
    if isinstance(value, (bytes, str)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict):
        for key in ROW_KEYS:
            if isinstance(value.get(key), int):
                return value[key]
    return None


def _seconds(start, end) -> float | None:
    from datetime import datetime

    try:
        return (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except (TypeError, ValueError):
        return None


class RunProgress:
    """Context manager around one ``dag.test``: prints a line per ended task until the run is over (then closes
    ``out``)."""

    def __init__(self, db: Path, dag_id: str, label: str, history: Path, out: TextIO, every: float = 0.5) -> None:
        self.db, self.dag_id, self.label, self.history, self.out, self.every = db, dag_id, label, history, out, every
        self.seen: set[tuple[str, int]] = set()
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ss4gl-progress", daemon=True)
        # Task instances that start from now on: a rerun of a logical date replaces its DAG run, and SQLite may give
        # the new run the deleted run's id, so ids cannot tell this run's tasks apart.
        self._since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        self._t0 = time.monotonic()
        self._console = None
        if out.isatty() and not os.environ.get("NO_COLOR"):
            from rich.console import Console

            self._console = Console(file=out, highlight=False)

    # ----------------------------------------------------------------------------------------- output
    def _say(self, text: str, style: str | None = None) -> None:
        if self._console is not None:
            self._console.print(text, style=style, markup=False)
        else:
            print(text, file=self.out, flush=True)

    def _previous(self) -> float | None:
        try:
            return float(json.loads(self.history.read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __enter__(self) -> RunProgress:
        previous = self._previous()
        hint = f"; the previous run took {previous:.0f} s" if previous else "; the first run takes longer"
        self._say(f"{self.label}: running (task lines below, details in the log){hint}")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._report(final=True)
        elapsed = time.monotonic() - self._t0
        tally = ", ".join(f"{n} {MARKS.get(s, s)}" for s, n in sorted(self.counts.items()))
        self._say(f"{self.label}: {len(self.seen)} tasks ended in {elapsed:.0f} s ({tally or 'none'})")
        if exc[0] is None:
            try:
                self.history.parent.mkdir(parents=True, exist_ok=True)
                self.history.write_text(json.dumps({"seconds": round(elapsed, 1)}))
            except OSError:
                pass
        self.out.close()

    # ----------------------------------------------------------------------------------------- polling
    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=2)

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            self._report()

    def _report(self, final: bool = False) -> None:
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "select ti.task_id, ti.map_index, ti.state, ti.start_date, ti.end_date,"
                    " (select x.value from xcom x where x.dag_run_id = r.id and x.task_id = ti.task_id"
                    "  and x.map_index = ti.map_index and x.key = 'return_value')"
                    " from task_instance ti join dag_run r on r.dag_id = ti.dag_id and r.run_id = ti.run_id"
                    " where r.dag_id = ? and ti.start_date >= ? order by ti.end_date",
                    (self.dag_id, self._since),
                ).fetchall()
        except sqlite3.Error:
            return  # the database is busy or not there yet: next time
        for task_id, map_index, state, start, end, value in rows:
            key = (task_id, map_index)
            if state not in ENDED or key in self.seen:
                continue
            if task_id.endswith("_watcher_done"):
                continue  # Cosmos' empty marker
            self.seen.add(key)
            self.counts[state] = self.counts.get(state, 0) + 1
            name = task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"
            took = _seconds(start, end)
            rows_moved = _rows(value)
            parts = [f"{time.monotonic() - self._t0:6.1f} s", f"{MARKS.get(state, state):8}", name]
            if took is not None:
                parts.append(f"{took:.1f} s")
            if rows_moved is not None:
                parts.append(f"{rows_moved:,} rows")
            self._say("  " + "  ".join(parts), STYLES.get(state))


def terminal() -> TextIO:
    """A text stream on this process's stdout as it is now (before the run's output is sent to the log)."""
    return os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
