"""Time the Eurostat GX suite on decode-sized frames (100k and 1M rows) against building the frame.

.venv/bin/python bench/bench_validation.py [rows ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from ingest.validation import Validator


def eurostat_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Long table like ingest.eurostat.decode output: unique (unit, nace_r2, geo, time), some flags."""
    rng = np.random.default_rng(seed)
    years = [str(y) for y in range(1995, 2025)]
    geos = [f"{c}{n}" for c in ("ES", "FR", "NL", "HU", "BE", "DE", "IT", "EL") for n in range(10, 100)]
    units = ["PC_GDP", "NR", "MIO_EUR"]
    naces = [f"C{i:02d}" for i in range(10, 99)]
    i = np.arange(rows)
    t, rest = i % len(years), i // len(years)
    g, rest = rest % len(geos), rest // len(geos)
    u, n = rest % len(units), rest // len(units)
    if n.max() >= len(naces):
        raise ValueError("too many rows for the synthetic cube")
    value = rng.uniform(0, 100, rows)
    missing = rng.random(rows) < 0.02
    value[missing] = np.nan
    obs = np.where(missing, "m", np.where(rng.random(rows) < 0.05, "p", None))

    def s(values: object) -> pd.api.extensions.ExtensionArray:
        return pd.array(values, dtype="str")

    return pd.DataFrame(
        {
            "dataset": s(np.full(rows, "bench_ds", dtype=object)),
            "freq": s(np.full(rows, "A", dtype=object)),
            "unit": s(np.array(units, dtype=object)[u]),
            "nace_r2": s(np.array(naces, dtype=object)[n]),
            "geo": s(np.array(geos, dtype=object)[g]),
            "time": s(np.array(years, dtype=object)[t]),
            "value": value,
            "obs_status": s(obs),
            "conf_status": s(np.full(rows, None, dtype=object)),
            "source_updated_at": s(np.full(rows, "2026-02-10T11:00:00+01:00", dtype=object)),
        }
    )


def main(sizes: list[int]) -> None:
    validator = Validator()
    start = time.perf_counter()
    validator.validate("eurostat_observations", "warmup", eurostat_frame(100), context={"dataset": "bench_ds"})
    print(f"GX import + context + first validation: {time.perf_counter() - start:.1f} s")
    for rows in sizes:
        start = time.perf_counter()
        frame = eurostat_frame(rows)
        built = time.perf_counter() - start
        ctx = {
            "dataset": "bench_ds",
            "obs_count": rows,
            "code_lists": {c: sorted(frame[c].unique().tolist()) for c in ("unit", "nace_r2", "geo")},
        }
        start = time.perf_counter()
        verdict = validator.validate("eurostat_observations", f"bench-{rows}", frame, context=ctx)
        took = time.perf_counter() - start
        print(
            f"{rows:>9,} rows: frame built in {built:.2f} s, validated in {took:.2f} s "
            f"({len(verdict.results)} expectations, success={verdict.success}, "
            f"{len(verdict.failed_warning)} warnings)"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
