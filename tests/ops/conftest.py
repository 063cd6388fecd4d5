"""Operations tests (issue "Operations", items 4 and 5): scale-out on Celery and fault injection.

Real processes only: Airflow components, Postgres servers, loopback HTTP replay servers; no mocks.
"""

from __future__ import annotations

import contextlib
import uuid

import psycopg2
import pytest
from psycopg2 import sql

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redis: needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres); "
        "fails, never skips, when they are missing",
    )


@contextlib.contextmanager
def fresh_database(prefix: str):
    """A fresh database ``<prefix>_<random>`` on the local PostgreSQL server; dropped afterwards."""
    try:
        admin = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"this test needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres): {exc}", pytrace=False)
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture
def metadata_db():
    """A fresh Airflow metadata database on the local PostgreSQL server; dropped afterwards."""
    with fresh_database("ss4gl_airflow") as name:
        yield name
