"""Synthetic warehouse volume for the dbt scale benchmark: the bundled samples (1×) and N× copies of them.

Usage (from the repo root; the target database must exist and be migrated)::

    .venv/bin/python bench/gen_volume.py <warehouse-url> [--factor 100]

* ``load_samples(url)`` loads the bundled samples into ``raw``, as the nightly run would, without Airflow:
  every ``ingest/samples/eurostat/*.json`` decoded by ``ingest.eurostat.decode`` → ``to_raw_rows`` →
  ``replace_partitions``; every inbox survey file parsed by ``ingest.surveys.parse.parse_file`` (fixed
  bench pseudonym key) → ``replace_partitions`` per (cluster, wave).
* ``scale(url, factor)`` multiplies the raw rows in SQL (``insert … select … cross join generate_series``):
  - ``raw.eurostat_observations``: every series is copied to ``factor - 1`` synthetic regions
    (``geo || 'X' || NN``), i.e. every dataset covers ~100× the regions (the order of all EU NUTS-2/3 regions);
  - survey tables (SME and state of affairs): ``factor = clusters × waves`` copies with
    ``waves = 5`` (wave − 2·w) and ``clusters = factor / 5`` (the real cluster ids, plus
    ``<cluster>_<c>`` synthetic clusters with the same respondents, new pseudonyms, new file hashes).

The repo's seeds do not list the synthetic clusters and regions; ``bench_dbt_scale.py`` builds a copy of the
dbt project whose seeds do (``extended_project``), so the volume reaches every mart.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO  # noqa: E402

BENCH_KEY = "bench-pseudonym-key-not-a-secret-0123456789"
SURVEY_TABLES = [
    "survey_sme_respondents",
    "survey_sme_service_ratings",
    "survey_sme_interests",
    "survey_sme_offers_needs",
    "survey_soa_profile",
    "survey_soa_kpis",
    "survey_soa_goals",
    "survey_soa_figures",
    "survey_soa_swot",
    "survey_soa_practices",
]


def load_samples(url: str) -> dict[str, int]:
    from ingest.eurostat.decode import decode
    from ingest.load import replace_partitions
    from ingest.surveys.parse import parse_file
    from ingest.tasks.eurostat import to_raw_rows
    from ingest.warehouse import ADMIN, connect

    os.environ.setdefault("SS4GL_PSEUDONYM_KEY", BENCH_KEY)
    conn = connect(url, role=ADMIN)
    loaded: dict[str, int] = {}
    for path in sorted((REPO / "ingest" / "samples" / "eurostat").glob("*.json")):
        code = path.stem
        frame = to_raw_rows(decode(path.read_bytes(), code), f"bench-{code}")
        n = replace_partitions(conn, {"eurostat_observations": frame}, {"dataset": code})
        loaded["eurostat_observations"] = loaded.get("eurostat_observations", 0) + n["eurostat_observations"]
    inbox = REPO / "ingest" / "samples" / "inbox"
    for path in sorted(p for p in inbox.glob("*/*/*") if p.is_file()):
        cluster, instrument = path.parent.parent.name, path.parent.name
        data = path.read_bytes()
        result = parse_file(data, path.name, cluster, instrument, key=BENCH_KEY.encode())
        if not result.ok:
            print(f"  skipped {path.relative_to(REPO)} (rejected by the parser, as in the nightly run)")
            continue
        batch_id = "bench-" + hashlib.sha256(data).hexdigest()[:16]
        tables = {}
        for table, frame in result.tables.items():
            frame = frame.copy()
            frame["batch_id"] = batch_id
            tables[table] = frame
        n = replace_partitions(conn, tables, {"cluster": cluster, "wave": int(result.wave)})
        for t, k in n.items():
            loaded[t] = loaded.get(t, 0) + k
    conn.close()
    return loaded


def _columns(cur, table: str) -> list[str]:
    cur.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' "
        "and table_name = %s order by ordinal_position",
        (table,),
    )
    return [r[0] for r in cur.fetchall()]


def scale(url: str, factor: int = 100, waves: int = 5) -> dict[str, int]:
    """Multiply the raw rows ``factor``× in place (see the module doc); return rows per table after."""
    from ingest.warehouse import ADMIN, connect

    clusters = max(1, factor // waves)
    conn = connect(url, role=ADMIN)
    counts = {}
    with conn, conn.cursor() as cur:
        cols = _columns(cur, "eurostat_observations")
        sel = ", ".join("e.geo || 'X' || lpad(k::text, 2, '0')" if c == "geo" else f"e.{c}" for c in cols)
        cur.execute(
            f"insert into raw.eurostat_observations ({', '.join(cols)}) select {sel} "  # noqa: S608
            f"from raw.eurostat_observations e cross join generate_series(1, {factor - 1}) k"
        )
        for table in SURVEY_TABLES:
            cols = _columns(cur, table)
            expr = {
                "cluster": "case when c = 0 then s.cluster else s.cluster || '_' || c end",
                "wave": "s.wave - 2 * w",
                "file_sha256": "s.file_sha256 || '-' || c || '-' || w",
                "batch_id": "s.batch_id || '-' || c || '-' || w",
                "respondent_pid": "case when c = 0 then s.respondent_pid else s.respondent_pid || '-' || c end",
            }
            sel = ", ".join(expr.get(c, f"s.{c}") for c in cols)
            cur.execute(
                f"insert into raw.{table} ({', '.join(cols)}) select {sel} from raw.{table} s "  # noqa: S608
                f"cross join generate_series(0, {clusters - 1}) c cross join generate_series(0, {waves - 1}) w "
                "where c > 0 or w > 0"
            )
        for table in ["eurostat_observations", *SURVEY_TABLES]:
            cur.execute(f"select count(*) from raw.{table}")  # noqa: S608
            counts[table] = cur.fetchone()[0]
    with conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("analyze")
    conn.close()
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--factor", type=int, default=100)
    args = ap.parse_args()
    print("1×:", load_samples(args.url))
    if args.factor > 1:
        print(f"{args.factor}×:", scale(args.url, args.factor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
