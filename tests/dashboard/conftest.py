"""One headless Chromium per test module (``browser``), started on first use."""

from __future__ import annotations

import os

import pytest

from tests.dashboard.dashboard_browser import Chromium, find_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it with apt-get)")
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    b = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()
