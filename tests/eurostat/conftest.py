"""Shared fixtures of the Eurostat tests: loopback replay server and a fast-backoff client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.archive import Received
from ingest.eurostat.client import EurostatClient
from ingest.eurostat.replay import BUNDLED_SAMPLES, ReplayServer


@pytest.fixture
def samples_dir() -> Path:
    return BUNDLED_SAMPLES


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
