"""A batch validated where it is staged (GX's SQL engine on Postgres, the bulk path) gets the verdict the same rows
get in memory (GX's pandas engine): same expectations evaluated, same successes, same unexpected counts."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest.config import SAMPLES_DIR
from tests.integration._support import isolated_stage

SUITE = "eurostat_observations"


def _frame() -> pd.DataFrame:
    from ingest.eurostat.decode import decode

    frame = decode((SAMPLES_DIR / "eurostat" / "nama_10r_2gdp.json").read_bytes(), "nama_10r_2gdp")
    bad = frame.iloc[[0, 1, 2, 3]].copy()
    bad.loc[bad.index[1], "geo"] = None  # a key with a null: counted as a duplicate by neither engine alone
    bad.loc[bad.index[2], "obs_status"] = "zz"  # outside the flag vocabulary
    bad.loc[bad.index[3], "unit"] = "not a code!"
    return pd.concat([frame, bad], ignore_index=True)  # row 0 twice: a duplicate key


def _results(verdict) -> list[tuple]:
    return sorted(
        (r.expectation, r.column or "", r.severity, r.success, r.unexpected_count or 0) for r in verdict.results
    )


@pytest.mark.parametrize("clean", [True, False])
def test_the_warehouse_and_memory_give_the_same_verdict(warehouse_url, tmp_path, clean):
    from psycopg2 import sql

    from ingest.load import copy_frame
    from ingest.validation import Validator
    from ingest.warehouse import LOADER, connect

    frame = _frame()
    if clean:
        frame = frame.iloc[: len(frame) - 4].reset_index(drop=True)
    context = {"dataset": "nama_10r_2gdp", "dimensions": ["freq", "unit", "geo"]}
    with isolated_stage(warehouse_url, tmp_path):
        in_memory = Validator(docs_dir=tmp_path / "docs-memory").validate(SUITE, "b", frame, context=context)
        name = "staged_same_verdict"
        with connect(role=LOADER) as conn, conn.cursor() as cur:
            cols = [
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL("numeric" if c == "value" else "text"))
                for c in frame.columns
            ]
            cur.execute(
                sql.SQL("create table {} ({})").format(sql.Identifier("raw_staging", name), sql.SQL(", ").join(cols))
            )
            copy_frame(cur, name, frame, schema="raw_staging")
        conn.close()
        staged = Validator(docs_dir=tmp_path / "docs-sql").validate_table(
            SUITE, "b", ("raw_staging", name), frame, len(frame), creator=lambda: connect(role=LOADER), context=context
        )
    assert in_memory.success is clean and staged.success is clean
    assert _results(staged) == _results(in_memory)
    if not clean:
        failed = {r.expectation for r in staged.results if not r.success}
        assert {"key_unique", "obs_status_vocabulary", "dimension_code_well_formed", "key_not_null"} <= failed
