"""Helpers shared by the Eurostat tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def shared_dir() -> Path | None:
    """The shared folder of real captures (``<repo>/../shared``, else ``/work/shared``), if present."""
    for cand in (REPO.parent / "shared", Path("/work/shared")):
        if cand.is_dir():
            return cand
    return None
