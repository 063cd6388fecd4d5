"""Test session: a throwaway embedded Postgres (WAREHOUSE_URL) and a throwaway state folder (SS4GL_HOME).

The server is initialised in a temporary folder when the session starts and stopped at the end. Tests that
need a clean database use the ``fresh_db`` fixture (a new database per test). Under pytest-xdist (``make test``
runs ``-n 2 --dist loadfile``) every worker has its own server and state folder, and a test module's tests stay on
one worker (its module fixtures, e.g. a whole nightly run, run once).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

# The sample generator (tools/survey_samples.py) writes xlsx with openpyxl's standard-library writer, whatever else
# is installed; set before any test imports openpyxl (it reads this once, at import).
os.environ["OPENPYXL_LXML"] = "False"

from ingest.config import ensure_runtime_dir  # noqa: E402

ensure_runtime_dir()
warnings.filterwarnings("ignore", module="platformdirs")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
_SESSION: dict = {}


def _xdist_controller(config: pytest.Config) -> bool:
    """The controller of a ``pytest -n N`` run: it runs no test, so it needs no server (each worker has its own)."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        return
    if os.environ.get("SS4GL_TEST_WAREHOUSE_URL"):
        # Explicitly chosen server (compatibility runs against a standard Postgres).
        os.environ["WAREHOUSE_URL"] = os.environ["SS4GL_TEST_WAREHOUSE_URL"]
    root = Path(tempfile.mkdtemp(prefix="ss4gl-test-"))
    os.chmod(root, 0o755)
    os.environ["SS4GL_HOME"] = str(root / "state")
    os.environ.setdefault("SS4GL_PSEUDONYM_KEY", "test-only-key-not-a-secret")
    os.environ.setdefault("EUROSTAT_BACKOFF_SCALE", "0.001")
    os.environ.setdefault("SS4GL_RETRY_DELAY_SECONDS", "1")
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
    os.environ["DO_NOT_TRACK"] = "1"
    _SESSION["root"] = root
    if "WAREHOUSE_URL" not in os.environ:
        from ingest.warehouse import EmbeddedServer

        server = EmbeddedServer(root / "warehouse")
        os.environ["WAREHOUSE_URL"] = server.ensure_running()
        _SESSION["server"] = server


# Whole-DAG runs (dag.test, a real scheduler and workers), the stage-level survey runs of tests/integration (GX on
# every bundled file), the wheel build and the large bad-input corpus: `make test` runs them, `make test-fast`
# (pytest -m "not slow": unit and component tests) leaves them out.
SLOW_MODULES = (
    "tests.integration.",  # stage runs, the bad-input corpus
    "tests.ops.",  # a scheduler and Celery workers, fault injection, overlapping runs
    "tests.pipeline.",  # whole nightly runs and backfills (ss4gl run / dag.test)
    "tests.deploy.test_wheel.",  # builds and installs the wheel
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and f"{item.module.__name__}.".startswith(SLOW_MODULES):
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _SESSION.get("server")
    if server is not None:
        server.stop()
    root = _SESSION.get("root")
    if root is not None and not os.environ.get("SS4GL_KEEP_TEST_STATE"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse_url() -> str:
    return os.environ["WAREHOUSE_URL"]


def create_database(server_url: str) -> str:
    """A new, migrated database on the test server; returns its URL."""
    import psycopg2
    from psycopg2 import sql

    from ingest.partnership import load_partnership
    from ingest.warehouse import migrate

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    admin.close()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    load_partnership(url)
    return url


def clone_database(server_url: str, source_url: str) -> str:
    """A new database on the test server holding what ``source_url`` holds (a template copy); returns its URL."""
    import psycopg2
    from psycopg2 import sql

    name, source = f"t_{uuid.uuid4().hex[:12]}", source_url.rsplit("/", 1)[1]
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (source,))
        cur.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(source)))
    admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(url.rsplit("/", 1)[1])))
    admin.close()


def query(url: str, sql: str, *params) -> list[tuple]:
    """Run one statement on ``url`` (own connection, committed) and return all rows."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def fresh_db(warehouse_url: str, monkeypatch: pytest.MonkeyPatch):
    """A new, migrated database on the test server; WAREHOUSE_URL points at it for the test."""
    url = create_database(warehouse_url)
    monkeypatch.setenv("WAREHOUSE_URL", url)
    yield url
    drop_database(warehouse_url, url)


@pytest.fixture(scope="session")
def shared_dir() -> Path | None:
    return SHARED if SHARED.is_dir() else None
