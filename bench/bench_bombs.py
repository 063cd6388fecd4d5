"""Crafted input bombs against the input bounds: reason, peak memory and time of each, each in its own process.

Usage (from the repo root)::

    .venv/bin/python bench/bench_bombs.py [--no-write] [--keep]

Builds every bomb under ``bench/out/bombs/`` (git-ignored; the builders of ``tests/bombs.py``, bounded memory),
parses or extracts each in a fresh interpreter (peak RSS = VmHWM of that child, interpreter and imports
included; seconds = the parse/extract call only), prints a table and rewrites the "Input bombs" section of
``bench/RESULTS.md``. The 640 MiB inbox file is sparse; its archived copy is deleted afterwards (unless --keep).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import REPO, machine_note, now, write_section

from tests import bombs

OUT = REPO / "bench" / "out" / "bombs"
HEADING = "## Input bombs (bounded inputs)"
INDESCAT = ("indescat", "sme_needs")
EPSI = ("epsi", "sme_needs")
KOBO = ("mse_cluster", "sme_needs")


@dataclass
class Case:
    name: str
    declared: str
    build: Callable[[Path], Path]
    run: Callable[[Path], bombs.Probe]


def _bytes(data: bytes) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return build


def _dense_gzip(path: Path) -> Path:
    import os

    chunk = os.urandom(16 << 10) + b"\0" * (bombs.CHUNK - (16 << 10))  # ~60x: under the ratio cap
    return bombs.gzip_bomb(path, 320 * bombs.MIB, chunk)


def _inbox(path: Path) -> Path:
    bombs.oversized_inbox_file(path / "epsi" / "sme_needs" / "results-huge.csv", 640 * bombs.MIB)
    return path


def _sample(path: Path) -> Path:
    shutil.copyfile(bombs.SAMPLE_XLSX, path)
    return path


CASES = [
    Case("baseline: bundled sample XLSX (parses)", "A1:BK87", _sample, lambda p: bombs.probe_survey(p, *INDESCAT)),
    Case(
        "XLSX declaring A1:XFD1048576 (sample cells)",
        "17,179,869,184 cells",
        bombs.declared_dimension_xlsx,
        lambda p: bombs.probe_survey(p, *INDESCAT),
    ),
    Case(
        "XLSX with real cells in A and XFD, 400 rows",
        "6,553,600 cells",
        bombs.wide_rows_xlsx,
        lambda p: bombs.probe_survey(p, *INDESCAT),
    ),
    Case(
        "XLSX zip bomb (sheet XML member)",
        "1 GiB uncompressed",
        bombs.zip_bomb_xlsx,
        lambda p: bombs.probe_survey(p, *INDESCAT),
    ),
    Case(
        "Kobo JSON, 100,000 nested arrays",
        "depth 100,000",
        _bytes(bombs.deep_json(100_000)),
        lambda p: bombs.probe_survey(p, *KOBO, name="kobo.json"),
    ),
    Case(
        "CSV of 9.9 M blank lines (19.8 MB)",
        "9,900,000 records",
        _bytes(b"id,NACE\r\n" + b"\r\n" * 9_900_000),
        lambda p: bombs.probe_survey(p, *EPSI, name="results.csv"),
    ),
    Case(
        "CSV with one 5 M-field row (10 MB)",
        "5,000,000 cells",
        _bytes(b"id,NACE\r\n" + b"a," * 5_000_000),
        lambda p: bombs.probe_survey(p, *EPSI, name="results.csv"),
    ),
    Case(
        "Eurostat gzip bomb, zeros (decode)", "2 GiB", lambda p: bombs.gzip_bomb(p, 2 * bombs.GIB), bombs.probe_eurostat
    ),
    Case("Eurostat gzip under the ratio cap (decode)", "320 MiB", _dense_gzip, bombs.probe_eurostat),
    Case(
        "oversized inbox file (surveys.extract)", "640 MiB", _inbox, lambda p: bombs.probe_extract(p, OUT / "archive")
    ),
]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.name.endswith(".json"))
    return path.stat().st_size


def _human(n: int) -> str:
    for unit, scale in (("GiB", bombs.GIB), ("MiB", bombs.MIB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    ap.add_argument("--keep", action="store_true", help="keep bench/out/bombs (the archive copy is 640 MiB)")
    args = ap.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    rows = []
    try:
        for i, case in enumerate(CASES):
            target = OUT / f"case{i}{'.xlsx' if 'XLSX' in case.name else ''}"
            if "inbox" in case.name:
                target.mkdir()
            path = case.build(target)
            got = case.run(path)
            reason = got.reason if got.reason != "ok" else f"ok ({sum(got.extra['rows'].values())} rows)"
            rows.append((case.name, _human(_size(path)), case.declared, reason, got.rss_mib, got.seconds))
            print(f"{case.name}: {reason}, {got.rss_mib:.0f} MiB, {got.seconds:.2f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(OUT, ignore_errors=True)
    table = ["| input | size | declared / expands to | reason | peak RSS (MiB) | s |", "|---|---:|---:|---|---:|---:|"]
    table += [f"| {n} | {s} | {d} | `{r}` | {m:.0f} | {t:.2f} |" for n, s, d, r, m, t in rows]
    print("\n".join(table))
    if not args.no_write:
        write_section(HEADING, _section(table))
    return 0


def _section(table: list[str]) -> str:
    return f"""{HEADING}

Run {now()} on {machine_note()}. Command:

  .venv/bin/python bench/bench_bombs.py

Each bomb is built at run time (`tests/bombs.py`) and parsed in its own fresh interpreter
(`ingest.surveys.parse.parse_file`, `ingest.eurostat.decode.decode`, or `ingest.tasks.surveys.extract` on the
warehouse); peak RSS is that child's VmHWM (/proc/self/status), interpreter and imports included (pandas,
pyarrow, openpyxl: the baseline row); seconds time the call only. Limits are the `catalogue.yml` defaults.

{chr(10).join(table)}

- Every bomb stays under the 512 MiB asserted by `tests/surveys/test_bounded_inputs.py` and
  `tests/eurostat/test_bounded_bodies.py` (not re-measured here without the bounds: openpyxl padded rows to the
  declared dimension, so A1:XFD1048576 meant 17 G cells; nested JSON escaped as a RecursionError; gzip bodies were
  expanded whole).
- The highest figure is the gzip body under the ratio cap: its output is held up to `max_decompressed_bytes`
  (256 MiB) before it is refused; the ratio cap stops the zeros after 2 MiB of output.
- CSV within the 20 MB file limit still costs a few times the file (decoded text, the csv module's row list):
  the row and cell caps stop it early, the file limit bounds the rest.
- The oversized inbox file is never read into memory: hashed, then streamed into the archive (640 MiB written,
  bounded memory) and quarantined at extract as `file_too_large`.
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
