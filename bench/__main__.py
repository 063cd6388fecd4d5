"""`python -m bench` (make bench): run every benchmark in turn; each rewrites its own section of RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_eurostat_decode.py", "bench_load.py", "bench_nightly.py", "bench_dbt_scale.py", "bench_bombs.py"]


def main(argv: list[str]) -> int:
    chosen = [s for s in SCRIPTS if not argv or any(a in s for a in argv)]
    failed = []
    for script in chosen:
        print(f"=== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent).returncode != 0:
            failed.append(script)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
