"""Bulk decode (issue #19): our streaming SDMX-TSV reader vs the ``eurostat`` package, in-process and whole-process.

Usage (from the repo root)::

    .venv/bin/python bench/bench_bulk_decode.py [--series 400000] [--no-write]

Inputs: the real Eurostat TSV of ``../shared/fixtures/eurostat/`` (when that folder exists) and a synthetic gzipped
TSV of ``--series`` × 25 periods (10 M cells by default; ``bench_eurostat_decode.make_tsv``). Each case runs in its
own process under ``/usr/bin/time -v``:

* ``ours`` — ``ingest.eurostat.bulk.iter_frames`` over the file (1 MiB pieces), every row decoded into the long
  table (dimension columns, period, value, flags), rows counted;
* ``eurostat`` — the ``eurostat`` package's own parsing of the same bytes (``get_data_df(flags=True)`` with its HTTP
  response and structure look-up replaced by the file, as in ``bench_eurostat_decode.py``; a file with LF line ends
  is given to it with CRLF, as the API sends them: the package splits lines at CRLF only).

In-process time = the decoding only (imports and reading the file excluded); whole-process time = the process's wall
time (interpreter start and imports counted); peak = the process's maximum RSS. Ratios are from the same run.
Targets: in-process ≥ 10×, whole-process ≥ 3×.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, machine_note, now, write_section

HEADING = "## Bulk decode: streaming SDMX-TSV vs the eurostat package"
OUT = REPO / "bench" / "out"
REAL = REPO.parent / "shared" / "fixtures" / "eurostat" / "nama_10r_3gdp_EUR_HAB.tsv.gz"


def run_case(case: str, path: Path) -> dict:
    """Runs in the child process: decode ``path`` with ``case``; report rows and in-process seconds."""
    if case == "ours":
        import io

        from ingest.eurostat.bulk import iter_frames

        payload = path.read_bytes()
        t0 = time.perf_counter()
        rows = sum(
            len(f)
            for f in iter_frames(io.BytesIO(payload), "bench", max_bytes=1 << 40, max_ratio=1000, block_bytes=1 << 20)
        )
    else:
        import gzip

        import eurostat.eurostat as es

        payload = path.read_bytes()
        with gzip.open(path) as fh:
            header = fh.readline().decode()
        if not header.endswith("\r\n"):  # the package splits lines at CRLF only (as the API sends them)
            payload = gzip.compress(gzip.decompress(payload).replace(b"\n", b"\r\n"), mtime=0)
        dims = [d.strip().lower() for d in header.split("\t")[0].split("\\")[0].split(",")]
        periods = len(header.rstrip("\r").split("\t")) - 1

        class _Resp:
            def __init__(self, content: bytes) -> None:
                self.content = content

        es.__get_dims_info__ = lambda code, detail=None: (None, "EUROSTAT", list(enumerate(dims)))
        es.__get_resp__ = lambda url, **kw: _Resp(payload)
        t0 = time.perf_counter()
        frame = es.get_data_df("bench", flags=True)
        rows = len(frame) * periods  # a wide frame: one row per series, a value and a flag column per period
    return {"case": case, "rows": rows, "seconds": time.perf_counter() - t0}


def in_process(case: str, path: Path) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, __file__, "--case", case, "--input", str(path)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    wall = time.perf_counter() - t0
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    out["peak_mib"] = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=400_000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.input)))
        return 0
    from bench_eurostat_decode import make_tsv

    OUT.mkdir(parents=True, exist_ok=True)
    synthetic = OUT / f"bulk_{args.series}.tsv.gz"
    if not synthetic.exists():
        synthetic.write_bytes(make_tsv(args.series))
    inputs = [("synthetic", synthetic, f"synthetic, {args.series:,} series × 25 periods ({args.series * 25:,} cells)")]
    if REAL.is_file():
        inputs.insert(0, ("real", REAL, f"real Eurostat TSV `{REAL.name}` (`../shared/fixtures/eurostat/`)"))
    rows, verdicts = [], []
    for key, path, label in inputs:
        ours, theirs = in_process("ours", path), in_process("eurostat", path)
        inner, whole = theirs["seconds"] / ours["seconds"], theirs["wall"] / ours["wall"]
        verdicts.append((label, inner, whole))
        size = path.stat().st_size / 2**20
        for who, r in (("ours (iter_frames)", ours), ("eurostat package", theirs)):
            rows.append(
                f"| {key} ({size:.1f} MiB) | {who} | {r['seconds']:.2f} | {r['wall']:.2f} | {r['rows']:,} "
                f"| {r['peak_mib']:.0f} |"
            )
        print(f"{label}: in-process {inner:.1f}×, whole-process {whole:.1f}×", flush=True)
    lines = [
        f"{HEADING} (issue #19)",
        "",
        f"Run {now()} on {machine_note()}. Command:",
        "",
        "  .venv/bin/python bench/bench_bulk_decode.py"
        + (f" --series {args.series}" if args.series != 400_000 else ""),
        "",
        "Each case in its own process under `/usr/bin/time -v`, one run. In-process = decoding only; whole-process ="
        " the process's wall time (imports counted). The package's row count is series × periods (a wide frame).",
        "",
        "| input | decoder | in-process s | whole-process s | rows | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    for label, inner, whole in verdicts:
        lines.append(
            f"- {label}: in-process **{inner:.1f}×** (target ≥ 10×: **{'met' if inner >= 10 else 'missed'}**), "
            f"whole-process **{whole:.1f}×** (target ≥ 3×: **{'met' if whole >= 3 else 'missed'}**)."
        )
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
