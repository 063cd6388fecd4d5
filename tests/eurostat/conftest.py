"""Shared fixtures of the Eurostat tests: loopback replay server and a fast-backoff client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ingest.archive import Received  # noqa: E402
from ingest.eurostat.client import EurostatClient  # noqa: E402
from ingest.eurostat.replay import ReplayServer  # noqa: E402
from ingest.eurostat.samples import OUT_DIR  # noqa: E402


def shared_dir() -> Path | None:
    """``/work/shared`` style folder: ``$REPO/../shared`` or ``/work/shared``, if present."""
    for cand in (REPO.parent / "shared", Path("/work/shared")):
        if cand.is_dir():
            return cand
    return None


@pytest.fixture
def samples_dir() -> Path:
    return OUT_DIR


@pytest.fixture
def server(samples_dir: Path) -> Iterator[ReplayServer]:
    with ReplayServer(samples_dir) as srv:
        yield srv


@pytest.fixture
def received() -> list[Received]:
    return []


@pytest.fixture
def client(server: ReplayServer, received: list[Received]) -> EurostatClient:
    return EurostatClient(
        server.base_url,
        on_response=received.append,
        timeout=2,
        max_attempts=4,
        poll_initial=0.01,
        poll_max=0.05,
        poll_budget=5,
        backoff_scale=0.001,
    )
