"""dbt build at 100× the sample volume vs 1×, same server, same run.

Usage (from the repo root)::

    .venv/bin/python bench/bench_dbt_scale.py [--factor 100] [--repeats 2] [--no-write]

Starts a throwaway embedded Postgres, creates database ``vol1`` (migrations + the bundled samples loaded by
``bench/gen_volume.py``) and ``vol<factor>`` (a copy, then ``gen_volume.scale``). Then, interleaved,
``ingest.tasks.transform.run_dbt(["build"])`` with ``WAREHOUSE_URL`` on each database (each in its own
process and its own ``SS4GL_HOME`` so the dbt target folders stay apart). Round 1 is a first build (creates
seeds, tables and the snapshot); later rounds are nightly-like rebuilds (snapshot compares). Slowest nodes
come from ``<SS4GL_HOME>/dbt/target/run_results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_note, now, throwaway_postgres, write_section  # noqa: E402

HEADING = "## dbt build at scale"
TARGET = 3.0
PY = str(REPO / ".venv" / "bin" / "python")
BUILD = (
    "import os, pathlib, ingest.tasks.transform as t; "
    "t.DBT_PROJECT_DIR = pathlib.Path(os.environ['BENCH_DBT_PROJECT']); print(t.run_dbt(['build']))"
)


def extended_project(dest: Path, clusters: int, geos: set[str]) -> Path:
    """A copy of dbt_project whose nuts_regions seed also holds the synthetic regions of gen_volume.scale: every
    NUTS 1-3 region among ``geos`` (the geo codes of the 1x observations) gets 99 copies ``<code>X<kk>`` (the geo
    codes gen_volume gives the Eurostat copies and :func:`extended_catalogue` its synthetic clusters). Both databases
    build this same project, so the seeds weigh the same in both.
    """
    import csv

    shutil.copytree(REPO / "dbt_project", dest, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    seeds = dest / "seeds"

    def extend(name: str, copies) -> None:
        path = seeds / name
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        fields = list(rows[0])
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fields, lineterminator="\n")
            for row in rows:
                writer.writerows(copies(dict(row)))

    def nuts_copies(row):
        if row["nuts_level"] in ("1", "2", "3") and row["nuts_code"] in geos:
            for k in range(1, 100):
                yield row | {
                    "nuts_code": f"{row['nuts_code']}X{k:02d}",
                    "nuts_name": f"{row['nuts_name']} (synthetic {k})",
                }

    extend("nuts_regions.csv", nuts_copies)
    return dest


def extended_catalogue(clusters: int):
    """The bundled catalogue plus synthetic cluster ``<id>_<c>`` (c = 1..clusters-1) of every cluster, with the
    regions ``<nuts>X<cc>`` of its original's regions and the same strategy targets."""
    from dataclasses import replace

    from ingest.config import ClusterRegion, load_catalogue

    cat = load_catalogue()
    copies = tuple(
        replace(
            cluster,
            id=f"{cluster.id}_{c}",
            role="partner",
            name=f"{cluster.name} (synthetic {c})",
            regions=tuple(f"{r}X{c:02d}" for r in cluster.regions),
            region_specs=tuple(
                ClusterRegion(f"{r.code}X{c:02d}", r.nuts_version, r.weight_basis) for r in cluster.region_specs
            ),
        )
        for c in range(1, clusters)
        for cluster in cat.clusters
    )
    targets = tuple(replace(t, cluster=f"{t.cluster}_{c}") for c in range(1, clusters) for t in cat.targets)
    return replace(cat, clusters=cat.clusters + copies, targets=cat.targets + targets)


def with_db(url: str, db: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def build(url: str, home: Path, project: Path) -> tuple[float, list[dict]]:
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_CONN_WAREHOUSE",)}
    env.update(
        WAREHOUSE_URL=url,
        SS4GL_HOME=str(home),
        PYTHONPATH=str(REPO),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        BENCH_DBT_PROJECT=str(project),
    )
    t0 = time.perf_counter()
    res = subprocess.run([PY, "-c", BUILD], env=env, cwd=REPO, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"dbt build failed on {urlsplit(url).path}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    rr = json.loads((home / "dbt" / "target" / "run_results.json").read_text())
    nodes = [{"id": r["unique_id"], "t": r["execution_time"], "status": r["status"]} for r in rr["results"]]
    return took, nodes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import gen_volume

    from ingest.partnership import load_partnership
    from ingest.warehouse import ADMIN, connect, migrate

    tmp = Path(tempfile.mkdtemp(prefix="ss4gl-bench-dbt-"))
    big = f"vol{args.factor}"
    times: dict[str, list[float]] = {"vol1": [], big: []}
    nodes: dict[str, list[dict]] = {}
    try:
        with throwaway_postgres("ss4gl-bench-dbt-") as (_server, url):
            admin = connect(with_db(url, "postgres"), role=ADMIN)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("create database vol1")
            u1 = with_db(url, "vol1")
            migrate(u1)
            t0 = time.perf_counter()
            counts1 = gen_volume.load_samples(u1)
            print(f"1×: {counts1} ({time.perf_counter() - t0:.1f} s)", flush=True)
            conn = connect(u1, role=ADMIN)  # closed before vol1 serves as a template
            with conn.cursor() as cur:
                cur.execute("select distinct geo from raw.eurostat_observations")
                geos = {geo for (geo,) in cur.fetchall()}
            conn.close()
            project = extended_project(tmp / "dbt_project", max(1, args.factor // 5), geos)
            # Both databases hold the synthetic clusters too (the partnership tables, from an extended catalogue).
            load_partnership(u1, extended_catalogue(max(1, args.factor // 5)), seeds=project / "seeds")
            with admin.cursor() as cur:
                cur.execute(f"create database {big} template vol1")
            admin.close()
            ub = with_db(url, big)
            t0 = time.perf_counter()
            countsb = gen_volume.scale(ub, args.factor)
            print(f"{args.factor}×: {countsb} ({time.perf_counter() - t0:.1f} s)", flush=True)
            for rnd in range(args.repeats):
                for db, u in (("vol1", u1), (big, ub)):
                    took, n = build(u, tmp / db, project)
                    times[db].append(took)
                    nodes[db] = n
                    print(f"round {rnd + 1} {db}: dbt build {took:.1f} s ({len(n)} nodes)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    last = {db: t[-1] for db, t in times.items()}
    ratio_last = last[big] / last["vol1"]
    ratio_first = times[big][0] / times["vol1"][0]
    print(f"{big} / vol1: rebuild {ratio_last:.2f}×, first build {ratio_first:.2f}× (target ≤ {TARGET}×)")
    slow = sorted(nodes[big], key=lambda r: -r["t"])[:10]
    small = {r["id"]: r["t"] for r in nodes["vol1"]}
    for r in slow:
        print(f"  {r['t']:8.2f} s (1×: {small.get(r['id'], 0):.2f} s) {r['id']}")
    if args.no_write:
        return 0
    raw1 = sum(counts1.values())
    rawb = sum(countsb.values())
    lines = [
        HEADING,
        "",
        f"Run {now()} on {machine_note()}. Command:",
        "",
        "  .venv/bin/python bench/bench_dbt_scale.py"
        + (f" --factor {args.factor}" if args.factor != 100 else "")
        + (f" --repeats {args.repeats}" if args.repeats != 2 else ""),
        "",
        f"Throwaway embedded Postgres, two databases: `vol1` = migrations + bundled samples ({raw1:,} raw rows), "
        f"`{big}` = the same × {args.factor} by `bench/gen_volume.py` ({rawb:,} raw rows: "
        f"{countsb['eurostat_observations']:,} Eurostat observations, "
        f"{countsb['survey_sme_respondents']:,} SME respondent-files over {args.factor // 5} clusters × 5 waves). "
        "`ingest.tasks.transform.run_dbt(['build'])` in its own process per build, rounds interleaved "
        "(round 1 = first build: creates tables and the snapshot; later rounds = nightly rebuild).",
        "",
        "Both databases build the same copy of `dbt_project` (its NUTS seed extended) and hold the same synthetic "
        f"clusters ({args.factor // 5} in all, each with its copies of the original regions and targets) and 99 "
        "copies of every NUTS 1-3 region of the 1× observations (`bench_dbt_scale.extended_project`), so the volume "
        "flows through every mart.",
        "",
        f"| round | vol1 s | {big} s | ratio |",
        "|---:|---:|---:|---:|",
    ]
    for i in range(args.repeats):
        lines.append(
            f"| {i + 1} | {times['vol1'][i]:.1f} | {times[big][i]:.1f} | {times[big][i] / times['vol1'][i]:.2f} |"
        )
    verdict = "met" if ratio_last <= TARGET else "**missed**"
    lines += [
        "",
        f"- **{args.factor}× / 1× = {ratio_last:.2f}×** on the nightly rebuild (first build "
        f"{ratio_first:.2f}×), target ≤ {TARGET}×: {verdict}.",
        "",
        f"Slowest nodes at {args.factor}× (last round, `run_results.json` execution_time):",
        "",
        f"| node | {big} s | vol1 s |",
        "|---|---:|---:|",
    ]
    for r in slow:
        lines.append(f"| `{r['id']}` | {r['t']:.2f} | {small.get(r['id'], 0):.2f} |")
    write_section(HEADING, "\n".join(lines))
    print("updated bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
