"""The partnership's configuration: its rows in the warehouse, and `ss4gl catalogue check`.

The catalogue (``ingest/catalogue.yml`` or the file ``SS4GL_CATALOGUE`` names) is the one source of truth for the
clusters, their regions (with NUTS version) and the strategy targets. :func:`load_partnership` replaces the rows of
``raw.partnership_clusters``, ``raw.partnership_cluster_regions`` and ``raw.partnership_strategy_targets`` from it in
one transaction (as the loader role) before every run; dbt builds ``reference.clusters``, ``cluster_regions`` and
``strategy_targets`` from them. Their ``batch_id`` is a hash of the rows, so a changed configuration is a change in
raw: the next run rebuilds the marts (the build fingerprint reads every raw table's batch ids).

Configuration errors of `ss4gl catalogue check` (exit 1): duplicate cluster, region or dataset ids (Eurostat and SDMX
datasets together); an SDMX dataset of an unknown provider; a cluster without regions, a region that is no NUTS code
of the version it is declared in, a seat or country that is no NUTS code, an unknown NUTS version, weighting,
benchmark level, role or language; codebook folders that are not a list of folders beside the catalogue; a strategy
target naming an unknown cluster or indicator (dbt seed ``indicators``), twice the same target, a target year not 1
to 5 years after its baseline year, values that are not numbers, or a target value equal to its baseline.

Baseline sanity (warnings; exit 1 with ``--strict``): a strategy target whose baseline year has no data, or whose
baseline differs from the value observed in that year by more than dbt var ``baseline_tolerance``. The rule is
the one of ``mart_partnership_indicators.baseline_check`` (stated once, in its model YAML): this command reports
the published column, read as ``bi_reader``, and says so when the marts are not built yet.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from ingest.config import (
    CATALOGUE_PATH,
    DBT_BUILD_LOCK,
    DBT_PROJECT_DIR,
    NUTS_VERSIONS,
    WEIGHT_BASES,
    Catalogue,
    load_catalogue,
)

SEEDS_DIR = DBT_PROJECT_DIR / "seeds"  # reference data of every partnership: NUTS codes, the indicator catalogue
STRATEGY_YEARS = 5  # a target year at most this many years after its baseline year
BENCHMARK_LEVELS = ("region", "eu")  # compare the cluster's regions, or the cluster at EU level (EU27_2020)
ROLES = ("coordinator", "partner")

#: raw table -> its columns, in the order :func:`partnership_rows` gives them (batch_id last).
TABLES: dict[str, tuple[str, ...]] = {
    "partnership_clusters": (
        "cluster_id",
        "cluster_name",
        "country_code",
        "seat_nuts_code",
        "benchmark_level",
        "role",
        "language",
    ),
    "partnership_cluster_regions": ("cluster_id", "nuts_code", "nuts_version", "weight_basis"),
    "partnership_strategy_targets": (
        "cluster_id",
        "indicator_code",
        "baseline_year",
        "baseline_value",
        "target_year",
        "target_value",
    ),
}


def partnership_rows(catalogue: Catalogue) -> dict[str, list[tuple]]:
    """The rows of each ``raw.partnership_*`` table (without batch_id) from the catalogue."""
    return {
        "partnership_clusters": [
            (c.id, c.name, c.country, c.seat, c.benchmark_level, c.role, c.language) for c in catalogue.clusters
        ],
        "partnership_cluster_regions": [
            (c.id, r.code, r.nuts_version, r.weight_basis) for c in catalogue.clusters for r in c.region_specs
        ],
        "partnership_strategy_targets": [
            (t.cluster, t.indicator, t.baseline_year, t.baseline_value, t.target_year, t.target_value)
            for t in catalogue.targets
        ],
    }


def configuration_id(rows: dict[str, list[tuple]]) -> str:
    """``partnership:<sha256 prefix>`` of the rows, whatever their order in the catalogue: the batch id of the
    partnership tables."""

    def key(row: tuple) -> str:
        return json.dumps(row, default=str)

    ordered = {table: sorted(table_rows, key=key) for table, table_rows in rows.items()}
    digest = hashlib.sha256(json.dumps(ordered, sort_keys=True, default=str).encode()).hexdigest()
    return f"partnership:{digest[:16]}"


class ConfigurationError(RuntimeError):
    """The catalogue has problems (`ss4gl catalogue check` lists them): nothing of it is loaded."""


def load_partnership(url: str | None = None, catalogue: Catalogue | None = None, seeds: Path = SEEDS_DIR) -> str:
    """Replace the ``raw.partnership_*`` rows from the catalogue in one transaction, as the loader role; nothing is
    written when they are current. Returns their batch id.

    A catalogue with problems (or one that cannot be read) is refused with one line (:class:`ConfigurationError`)
    before anything is written: the warehouse keeps the last good configuration and the marts built from it. The
    rows change only while no dbt build runs (``DBT_BUILD_LOCK``), so a build never reads half of each.
    """
    from ingest.warehouse import LOADER, connect, exclusive

    problems = check_catalogue(catalogue, seeds) if catalogue is not None else check_configuration(seeds=seeds)
    if problems:
        more = f" (and {len(problems) - 1} more: ss4gl catalogue check)" if len(problems) > 1 else ""
        raise ConfigurationError(f"configuration not loaded: {problems[0]}{more}")
    rows = partnership_rows(catalogue or load_catalogue())
    batch_id = configuration_id(rows)
    with exclusive(DBT_BUILD_LOCK, url):
        _replace(connect(url, role=LOADER), rows, batch_id)
    return batch_id


def _replace(conn, rows: dict[str, list[tuple]], batch_id: str) -> None:
    """The partnership tables' rows replaced by ``rows`` in one transaction (nothing written when current)."""
    from psycopg2 import sql

    try:
        with conn, conn.cursor() as cur:
            current = set()
            for table in TABLES:
                cur.execute(sql.SQL("select distinct batch_id from {}").format(sql.Identifier("raw", table)))
                current |= {r[0] for r in cur.fetchall()}
            if current == {batch_id}:
                return
            for table, columns in TABLES.items():
                target = sql.Identifier("raw", table)
                cur.execute(sql.SQL("delete from {}").format(target))
                insert = sql.SQL("insert into {} ({}) values ({})").format(
                    target,
                    sql.SQL(", ").join(map(sql.Identifier, (*columns, "batch_id"))),
                    sql.SQL(", ").join(sql.Placeholder() * (len(columns) + 1)),
                )
                cur.executemany(insert, [(*row, batch_id) for row in rows[table]])
    finally:
        conn.close()


def _seed(name: str, seeds: Path) -> list[dict[str, str]]:
    with (seeds / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _duplicates(values: list) -> list:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def _number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def check_configuration(catalogue_path: Path | None = None, seeds: Path = SEEDS_DIR) -> list[str]:
    """Every configuration problem of the catalogue file, one line each (empty: consistent)."""
    path = Path(catalogue_path or os.environ.get("SS4GL_CATALOGUE") or CATALOGUE_PATH)
    try:
        catalogue = load_catalogue(path)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        return [f"{path.name}: cannot be read: {detail}"]
    return check_catalogue(catalogue, seeds)


def check_catalogue(catalogue: Catalogue, seeds: Path = SEEDS_DIR) -> list[str]:
    """Every configuration problem of a catalogue, one line each, against the NUTS codes and indicators of the
    ``seeds`` folder."""
    name = catalogue.path.name
    problems = [f"{name}: cluster id {c!r} is defined twice" for c in _duplicates([c.id for c in catalogue.clusters])]
    codes = [d.code for d in catalogue.datasets] + [d.code for d in catalogue.sdmx_datasets]
    problems += [f"{name}: dataset {d!r} is listed twice" for d in _duplicates(codes)]
    providers = {p.id for p in catalogue.sdmx_providers}
    problems += [
        f"{name}: SDMX dataset {d.code}: unknown provider {d.provider} (sources.sdmx.providers: "
        f"{', '.join(sorted(providers)) or 'none'})"
        for d in catalogue.sdmx_datasets
        if d.provider not in providers
    ]
    nuts = {r["nuts_code"]: r for r in _seed("nuts_regions", seeds)}
    for cluster in catalogue.clusters:
        where = f"{name}: cluster {cluster.id}"
        for code in _duplicates(list(cluster.regions)):
            problems.append(f"{where}: region {code} is listed twice")
        for region in cluster.region_specs:
            known = nuts.get(region.code)
            if region.nuts_version not in NUTS_VERSIONS:
                problems.append(
                    f"{where}: region {region.code}: NUTS version {region.nuts_version} is none of "
                    f"{', '.join(NUTS_VERSIONS)}"
                )
            elif known is None:
                problems.append(f"{where}: region {region.code} is no NUTS 2021 or NUTS 2024 code")
            elif known.get(f"in_nuts_{region.nuts_version}") != "true":
                problems.append(f"{where}: region {region.code} is not a NUTS {region.nuts_version} code")
            if region.weight_basis not in WEIGHT_BASES:
                problems.append(
                    f"{where}: region {region.code}: weight_basis {region.weight_basis} is none of "
                    f"{', '.join(WEIGHT_BASES)}"
                )
        if not cluster.region_specs:
            problems.append(f"{where}: no regions (at least one NUTS code)")
        for attr, allowed in (("benchmark_level", BENCHMARK_LEVELS), ("role", ROLES)):
            if getattr(cluster, attr) not in allowed:
                problems.append(f"{where}: {attr} {getattr(cluster, attr)} is none of {', '.join(allowed)}")
        if not re.fullmatch(r"[a-z]{2}", cluster.language):
            problems.append(f"{where}: language {cluster.language} is no ISO 639-1 code (two lower-case letters)")
        if cluster.seat and cluster.seat not in nuts:
            problems.append(f"{where}: seat {cluster.seat} is no NUTS 2021 or NUTS 2024 code")
        if cluster.country not in nuts:
            problems.append(f"{where}: country {cluster.country} is no Eurostat country code")
    dirs = (catalogue.sources.get("surveys") or {}).get("codebook_dirs") or []
    if not isinstance(dirs, list):
        problems.append(f"{name}: sources.surveys.codebook_dirs is not a list of folders")
    else:
        problems += [
            f"{name}: sources.surveys.codebook_dirs: {d} is no folder beside the catalogue"
            for d in dirs
            if not (catalogue.path.parent / str(d)).is_dir()
        ]
    indicators = {r["indicator_code"] for r in _seed("indicators", seeds)}
    clusters = {c.id for c in catalogue.clusters}
    for key in _duplicates([(t.cluster, t.indicator) for t in catalogue.targets]):
        problems.append(f"{name}: strategy target {' '.join(key)}: two targets for one cluster and indicator")
    for n, t in enumerate(catalogue.targets, start=1):
        where = f"{name}: strategy target {n} ({t.cluster} {t.indicator})"
        if t.cluster not in clusters:
            problems.append(f"{where}: unknown cluster {t.cluster}")
        if t.indicator not in indicators:
            problems.append(f"{where}: unknown indicator {t.indicator} (seed indicators.csv)")
        missing = [
            k for k in ("baseline_year", "baseline_value", "target_year", "target_value") if getattr(t, k) is None
        ]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        years = [y for y in (t.baseline_year, t.target_year) if isinstance(y, bool) or not isinstance(y, int)]
        if years:
            problems.append(f"{where}: {', '.join(map(str, years))} is not a year")
        elif not t.baseline_year < t.target_year <= t.baseline_year + STRATEGY_YEARS:
            problems.append(
                f"{where}: target year {t.target_year} is not 1 to {STRATEGY_YEARS} years after baseline year "
                f"{t.baseline_year}"
            )
        if not (_number(t.baseline_value) and _number(t.target_value)):
            problems.append(f"{where}: baseline and target values must be numbers")
        elif Decimal(t.baseline_value) == Decimal(t.target_value):
            problems.append(f"{where}: the target value is the baseline value")
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


def _figure(value) -> str:
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
        f"{_figure(base)} ({check})"
        if observed is None
        else f"strategy target {cluster} {indicator}: baseline {_figure(base)} ({year}) differs from the observed "
        f"{_figure(observed)} by more than var baseline_tolerance ({check})"
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
        print("catalogue consistent" + ("" if args.no_data else "; every strategy baseline matches the data"))
    failed = bool(problems) or (args.strict and bool(warnings))
    if failed:
        print(f"{len(problems)} error(s), {len(warnings)} warning(s)", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    cat = sub.add_parser("catalogue", help="the partnership's configuration (catalogue.yml)")
    actions = cat.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="check the catalogue and the strategy baselines; one line per problem")
    check.add_argument("--catalogue", type=Path, help="catalogue file (default: SS4GL_CATALOGUE or the bundled one)")
    check.add_argument("--no-data", action="store_true", help="configuration only: do not read the warehouse")
    check.add_argument("--strict", action="store_true", help="baseline warnings fail the check too")
    check.set_defaults(func=_cmd_check)
