"""Helpers shared by the benchmarks: RESULTS.md sections, machine note, throwaway embedded Postgres."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def write_section(heading: str, text: str) -> None:
    """Replace (or append) the section starting with ``heading``; other sections are kept as they are."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if heading in old:
        start = old.index(heading)
        nxt = old.find("\n## ", start + len(heading))
        old = old[:start].rstrip("\n") + ("\n\n" + old[nxt + 1 :] if nxt != -1 else "")
    RESULTS.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n", encoding="utf-8")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine_note() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs (load average "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end of the run), CPython {platform.python_version()}"
    )


@contextlib.contextmanager
def throwaway_postgres(prefix: str = "ss4gl-bench-"):
    """An embedded Postgres under a temp dir, migrated; yields (server, url). Stopped and deleted after."""
    from ingest.partnership import load_partnership
    from ingest.warehouse import EmbeddedServer, migrate

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = EmbeddedServer(root=tmp / "warehouse")
    try:
        url = server.ensure_running()
        migrate(url)
        load_partnership(url)
        yield server, url
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
