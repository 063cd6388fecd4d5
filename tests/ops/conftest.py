"""Operations tests (issue "Operations", items 4 and 5): scale-out on Celery and fault injection.

Real processes only: Airflow components, Postgres servers, loopback HTTP replay servers; no mocks.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redis: needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres); "
        "fails, never skips, when they are missing",
    )
