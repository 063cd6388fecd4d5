"""record(): verdicts into audit.validation_runs / validation_results on a real Postgres (throwaway DB)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.validation import ExpectationResult, Verdict, record

MIGRATIONS = Path(__file__).resolve().parents[2] / "ingest" / "migrations"
FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def audit_db() -> Iterator[str]:
    """A throwaway database on WAREHOUSE_URL's server (else 127.0.0.1:5432) with 0001 + 0003 applied."""
    psycopg2 = pytest.importorskip("psycopg2")
    from psycopg2 import sql

    server = os.environ.get("WAREHOUSE_URL") or FALLBACK_URL
    try:
        admin = psycopg2.connect(server, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no Postgres at {server}: {exc}")
    admin.autocommit = True
    name = f"ss4gl_validation_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            for migration in ("0001_init.sql", "0003_validation.sql", "0003_validation.sql"):  # idempotent
                cur.execute((MIGRATIONS / migration).read_text(encoding="utf-8"))
        conn.close()
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()


def _verdict() -> Verdict:
    results = [
        ExpectationResult(
            "key_unique",
            "geo,time",
            "critical",
            False,
            10,
            2,
            20.0,
            ["geo=ES51, time=2020"],
            {"type": "expect_compound_columns_to_be_unique", "expected": "one row per key"},
        ),
        ExpectationResult(
            "percentage_in_0_100",
            "value",
            "warning",
            True,
            4,
            0,
            float("nan"),
            [],
            {"type": "expect_column_values_to_be_between", "condition": "unit in (PC)"},
        ),
        ExpectationResult(
            "columns_present",
            None,
            "critical",
            True,
            None,
            None,
            None,
            [],
            {"type": "expect_table_columns_to_match_set", "observed": np.int64(3)},
        ),
    ]
    return Verdict(
        "eurostat:nama_10r_2gdp:abc",
        "eurostat_observations",
        False,
        results,
        dataset="nama_10r_2gdp",
        row_count=10,
        skipped=["row_count_matches_obs_count: context obs_count"],
    )


def test_record_writes_runs_and_results(audit_db: str) -> None:
    import psycopg2

    verdict = _verdict()
    conn = psycopg2.connect(audit_db)
    with conn:
        assert record(conn, [verdict], run_id="manual__1", logical_date=date(2026, 11, 27)) == 3
    with conn:  # idempotent per validation_id
        record(conn, [verdict], run_id="manual__1", logical_date=date(2026, 11, 27))
    with conn, conn.cursor() as cur:
        cur.execute(
            "select batch_id, suite, dataset, success, evaluated, failed_critical, failed_warning, row_count,"
            " logical_date, run_id from audit.validation_runs"
        )
        assert cur.fetchall() == [
            (
                "eurostat:nama_10r_2gdp:abc",
                "eurostat_observations",
                "nama_10r_2gdp",
                False,
                3,
                1,
                0,
                10,
                date(2026, 11, 27),
                "manual__1",
            )
        ]
        cur.execute(
            "select expectation, expectation_type, column_name, severity, success, unexpected_count,"
            " unexpected_percent, sample_values, details->>'observed' from audit.validation_results"
            " order by ordinal"
        )
        rows = cur.fetchall()
    conn.close()
    assert rows[0] == (
        "key_unique",
        "expect_compound_columns_to_be_unique",
        "geo,time",
        "critical",
        False,
        2,
        20.0,
        ["geo=ES51, time=2020"],
        None,
    )
    assert rows[1][6] is None  # NaN percent stored as null
    assert rows[2][8] == "3"


def test_record_real_verdict(audit_db: str) -> None:
    """A verdict straight from GX round-trips (numpy scalars, NaN, nested details)."""
    import psycopg2

    from ingest.validation import Validator

    frame = pd.DataFrame(
        {
            "dataset": pd.array(["d", "d"], dtype="str"),
            "geo": pd.array(["ES51", "GR1"], dtype="str"),
            "time": pd.array(["2020", "2020"], dtype="str"),
            "value": [1.0, np.nan],
            "obs_status": pd.array([None, None], dtype="str"),
            "conf_status": pd.array([None, None], dtype="str"),
            "source_updated_at": pd.array([None, None], dtype="str"),
        }
    )
    verdict = Validator().validate("eurostat_observations", "b-real", frame, context={"dataset": "d"})
    assert not verdict.success
    conn = psycopg2.connect(audit_db)
    with conn:
        n = record(conn, [verdict], run_id="r2", logical_date="2026-11-27")
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) filter (where not success) from audit.validation_results where run_id = 'r2'")
        assert cur.fetchone()[0] == len(verdict.failed)
    conn.close()
    assert n == len(verdict.results)
