"""Helpers shared by the Eurostat tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared folder of real captures (``<repo>/../shared``, else ``/work/shared``), if present."""
    for cand in (REPO.parent / "shared", Path("/work/shared")):
        if cand.is_dir():
            return cand
    return None
