"""`ss4gl catalogue check`: the partnership's configuration checked as a whole, one line per problem.

Configuration errors (exit 1): duplicate cluster or dataset ids in the catalogue; a cluster region or seat that
is no NUTS code of the version it is declared in; the catalogue's clusters and regions differing from the dbt
seeds `clusters` and `cluster_regions`; a strategy target naming an unknown cluster or indicator, twice the same
target, or a baseline year not before its target year.

Baseline sanity (warnings; exit 1 with ``--strict``): a strategy target whose baseline year has no data, or whose
baseline differs from the value observed in that year by more than dbt var ``baseline_tolerance``. The rule is
the one of ``mart_partnership_indicators.baseline_check`` (stated once, in its model YAML): this command reports
the published column, read as ``bi_reader``, and says so when the marts are not built yet.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from pathlib import Path

import yaml

from ingest.config import CATALOGUE_PATH, DBT_PROJECT_DIR, load_catalogue

SEEDS_DIR = DBT_PROJECT_DIR / "seeds"


def _seed(name: str, seeds: Path) -> list[dict[str, str]]:
    with (seeds / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _duplicates(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def check_configuration(catalogue_path: Path | None = None, seeds: Path = SEEDS_DIR) -> list[str]:
    """Every configuration problem of the catalogue and the dbt seeds, one line each (empty: consistent)."""
    path = Path(catalogue_path or os.environ.get("SS4GL_CATALOGUE") or CATALOGUE_PATH)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    problems = [
        f"{path.name}: cluster id {c!r} is defined twice"
        for c in _duplicates([c.get("id") for c in raw.get("clusters") or []])
    ]
    problems += [
        f"{path.name}: dataset {d!r} is listed twice"
        for d in _duplicates([d.get("code") for d in raw.get("datasets") or []])
    ]
    catalogue = load_catalogue(path)
    nuts = {r["nuts_code"]: r for r in _seed("nuts_regions", seeds)}
    regions = {(r["cluster_id"], r["nuts_code"]): r for r in _seed("cluster_regions", seeds)}
    seeded_clusters = {r["cluster_id"] for r in _seed("clusters", seeds)}
    for cluster in catalogue.clusters:
        where = f"{path.name}: cluster {cluster.id}"
        if cluster.id not in seeded_clusters:
            problems.append(f"{where}: missing from seed clusters.csv")
        for code in cluster.regions:
            row, known = regions.get((cluster.id, code)), nuts.get(code)
            if known is None:
                problems.append(f"{where}: region {code} is no NUTS 2021 or NUTS 2024 code")
            if row is None:
                problems.append(f"{where}: region {code} missing from seed cluster_regions.csv")
            elif known is not None and known.get(f"in_nuts_{row['nuts_version']}") != "true":
                problems.append(
                    f"{where}: region {code} is not a NUTS {row['nuts_version']} code "
                    f"(cluster_regions.csv nuts_version)"
                )
        if cluster.seat and cluster.seat not in nuts:
            problems.append(f"{where}: seat {cluster.seat} is no NUTS 2021 or NUTS 2024 code")
    configured = {(c.id, r) for c in catalogue.clusters for r in c.regions}
    problems += [
        f"cluster_regions.csv: {c} {r} is not a region of cluster {c} in {path.name}"
        for c, r in sorted(set(regions) - configured)
    ]
    problems += [
        f"clusters.csv: cluster {c} is not in {path.name}"
        for c in sorted(seeded_clusters - {c.id for c in catalogue.clusters})
    ]
    indicators = {r["indicator_code"] for r in _seed("indicators", seeds)}
    clusters = {c.id for c in catalogue.clusters}
    targets = _seed("strategy_targets", seeds)
    for key in _duplicates([f"{t['cluster_id']} {t['indicator_code']}" for t in targets]):
        problems.append(f"strategy_targets.csv: {key}: two targets for one cluster and indicator")
    for n, t in enumerate(targets, start=2):  # line 1 is the header
        where = f"strategy_targets.csv line {n}: {t['cluster_id']} {t['indicator_code']}"
        if t["cluster_id"] not in clusters:
            problems.append(f"{where}: unknown cluster {t['cluster_id']}")
        if t["indicator_code"] not in indicators:
            problems.append(f"{where}: unknown indicator {t['indicator_code']} (seed indicators.csv)")
        try:
            if int(t["baseline_year"]) >= int(t["target_year"]):
                problems.append(
                    f"{where}: baseline year {t['baseline_year']} is not before target year {t['target_year']}"
                )
            float(t["baseline_value"]), float(t["target_value"])
        except ValueError:
            problems.append(f"{where}: years and values must be numbers")
    return problems


BASELINE_SQL = """
    select targets.cluster_id, targets.indicator_code, targets.baseline_year, targets.baseline_value,
           targets.baseline_check, observed.value
    from (select distinct cluster_id, indicator_code, baseline_year, baseline_value, baseline_check
          from marts.mart_partnership_indicators where baseline_check is not null) as targets
    left join marts.mart_partnership_indicators as observed
        on observed.cluster_id = targets.cluster_id and observed.indicator_code = targets.indicator_code
        and observed.year = targets.baseline_year
    order by 1, 2
"""


def _number(value) -> str:
    return "-" if value is None else f"{value:,.6f}".rstrip("0").rstrip(".")


def check_baselines() -> list[str] | None:
    """One warning per strategy target whose baseline disagrees with the data (None: the marts are not built)."""
    from ingest.warehouse import READER, connect

    conn = connect(role=READER)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select to_regclass('marts.mart_partnership_indicators') is not null")
            if not cur.fetchone()[0]:
                return None
            cur.execute(BASELINE_SQL)
            rows = cur.fetchall()
    finally:
        conn.close()
    return [
        f"strategy target {cluster} {indicator}: no data in its baseline year {year}, baseline "
        f"{_number(base)} ({check})"
        if observed is None
        else f"strategy target {cluster} {indicator}: baseline {_number(base)} ({year}) differs from the observed "
        f"{_number(observed)} by more than var baseline_tolerance ({check})"
        for cluster, indicator, year, base, check, observed in rows
    ]


def _cmd_check(args: argparse.Namespace) -> int:
    problems = check_configuration(args.catalogue)
    for line in problems:
        print(f"error: {line}")
    warnings: list[str] = []
    if not args.no_data:
        found = check_baselines()
        if found is None:
            print("baselines not checked: the marts are not built yet (run `ss4gl run` first)")
        warnings = found or []
    for line in warnings:
        print(f"warning: {line}")
    if not problems and not warnings:
        print("catalogue and seeds consistent" + ("" if args.no_data else "; every strategy baseline matches the data"))
    failed = bool(problems) or (args.strict and bool(warnings))
    if failed:
        print(f"{len(problems)} error(s), {len(warnings)} warning(s)", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    cat = sub.add_parser("catalogue", help="the partnership's configuration (catalogue.yml and dbt seeds)")
    actions = cat.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check", help="check the catalogue, the seeds and the strategy baselines; one line per problem"
    )
    check.add_argument("--catalogue", type=Path, help="catalogue file (default: SS4GL_CATALOGUE or the bundled one)")
    check.add_argument("--no-data", action="store_true", help="configuration only: do not read the warehouse")
    check.add_argument("--strict", action="store_true", help="baseline warnings fail the check too")
    check.set_defaults(func=_cmd_check)
