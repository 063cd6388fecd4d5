"""Published mart rows against recomputed ones: one readable line per difference."""

from __future__ import annotations

import psycopg2
import psycopg2.extras
from psycopg2 import sql

from tests.pipeline.recompute.exact import expected_text, matches, published_text
from tests.pipeline.recompute.marts import Spec


def published(url: str, mart: str, spec: Spec) -> dict[tuple, dict]:
    """The mart's rows as dbt published them: {key: {column: value}} (numeric as Decimal)."""
    columns = list(spec.key) + list(spec.columns)
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(
                sql.SQL("select {} from marts.{}").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(mart)
                )
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    out = {}
    for row in rows:
        key = tuple(row[k] for k in spec.key)
        assert key not in out, f"{mart}: key {key} published twice"
        out[key] = {c: row[c] for c in spec.columns}
    return out


def compare(mart: str, spec: Spec, dbt_rows: dict[tuple, dict], recomputed: dict[tuple, dict]) -> tuple[int, list[str]]:
    """(number of non-null published values compared, one line per difference: mart, key, column, dbt value,
    recomputed value). Every column of `spec` is compared on every row both sides have; a row only one side has
    is one line."""
    lines, compared = [], 0
    for key in sorted(dbt_rows.keys() | recomputed.keys(), key=lambda k: tuple(map(str, k))):
        label = ", ".join(f"{k}={v}" for k, v in zip(spec.key, key, strict=True))
        if key not in recomputed:
            lines.append(f"{mart} [{label}]: row published by dbt, not in the recomputation")
            continue
        if key not in dbt_rows:
            lines.append(f"{mart} [{label}]: row in the recomputation, not published by dbt")
            continue
        for column, rule in spec.columns.items():
            got, want = dbt_rows[key][column], recomputed[key].get(column)
            compared += got is not None
            if not matches(got, want, rule):
                lines.append(
                    f"{mart} [{label}] {column}: dbt {published_text(got)} != recomputed {expected_text(want, rule)}"
                )
    return compared, lines
