"""Loads are atomic per partition and idempotent (real Postgres, real COPY)."""

from __future__ import annotations

import pandas as pd
import psycopg2
import pytest

from ingest.load import replace_partitions


def _frame(dataset: str, values: list) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "dataset": [dataset] * n,
            "series_key": ["freq=A,unit=PC"] * n,
            "dims": ['{"freq":"A","unit":"PC"}'] * n,
            "geo": ["NL41"] * n,
            "time": [str(2015 + i) for i in range(n)],
            "value": values,
            "obs_status": [None] * n,
            "conf_status": [None] * n,
            "source_updated_at": ["2026-02-10T11:00:00+01:00"] * n,
            "batch_id": [f"eurostat:{dataset}:b1"] * n,
        }
    )


def _rows(url: str, dataset: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select time, value::text, obs_status from raw.eurostat_observations where dataset = %s order by time",
            (dataset,),
        )
        rows = cur.fetchall()
    conn.close()
    return rows


def test_same_batch_twice_leaves_same_rows_and_exact_values(fresh_db):
    frame = _frame("d1", [0.1, 12345.678, None, 1e-7])
    conn = psycopg2.connect(fresh_db)
    for _ in range(2):
        replace_partitions(conn, {"eurostat_observations": frame}, {"dataset": "d1"})
    conn.close()
    assert _rows(fresh_db, "d1") == [
        ("2015", "0.1", None),
        ("2016", "12345.678", None),
        ("2017", None, None),
        ("2018", "0.0000001", None),
    ]


def test_failed_load_keeps_previous_rows_and_other_partitions(fresh_db):
    conn = psycopg2.connect(fresh_db)
    replace_partitions(conn, {"eurostat_observations": _frame("d1", [1.0, 2.0])}, {"dataset": "d1"})
    replace_partitions(conn, {"eurostat_observations": _frame("d2", [5.0])}, {"dataset": "d2"})
    bad = _frame("d1", [3.0, 4.0, 5.0])
    bad.loc[2, "time"] = "2016"  # duplicate key: the COPY fails half-way
    with pytest.raises(psycopg2.errors.UniqueViolation):
        replace_partitions(conn, {"eurostat_observations": bad}, {"dataset": "d1"})
    conn.close()
    assert _rows(fresh_db, "d1") == [("2015", "1", None), ("2016", "2", None)]
    assert _rows(fresh_db, "d2") == [("2015", "5", None)]
