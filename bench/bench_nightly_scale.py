"""A no-change night with 50 catalogue datasets vs one with the 14 of the bundled catalogue (issue #19).

Usage (from the repo root)::

    .venv/bin/python bench/bench_nightly_scale.py [--datasets 50] [--repeats 3] [--no-write]

Two throwaway state folders (``SS4GL_HOME``; embedded warehouse each), both fed by one loopback replay server of
Eurostat (``ingest.eurostat.replay``; ``EUROSTAT_BASE_URL``) and the bundled survey inbox:

* ``14``: the bundled catalogue and Eurostat samples;
* ``50``: the same plus copies of the bundled Statistics API datasets under new codes (``<code>_cN``: same
  filters, geo and samples; listed in the table of contents), written to a catalogue file (``SS4GL_CATALOGUE``).

Each home gets a first run (``ss4gl run --date D``: every dataset fetched, validated and loaded), then, interleaved
``--repeats`` times, a no-change night (``ss4gl run --date D+i``: the table of contents says nothing changed, so
nothing is downloaded). Ratio = median no-change night of ``50`` / that of ``14``. Target ≤ 1.2×.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_note, now, write_section  # noqa: E402
from bench_nightly import SS4GL, _env, _timed_run  # noqa: E402

HEADING = "## No-change night: 50 catalogue datasets vs 14"
SAMPLES = REPO / "ingest" / "samples"
TARGET = 1.2


def widen(tmp: Path, datasets: int) -> tuple[Path, Path, int]:
    """A catalogue of ``datasets`` Eurostat datasets and a samples folder serving them; (catalogue, samples, n)."""
    catalogue = yaml.safe_load((REPO / "ingest" / "catalogue.yml").read_text())
    samples = tmp / "eurostat"
    shutil.copytree(SAMPLES / "eurostat", samples)
    base = catalogue["eurostat_datasets"]
    api = [d for d in base if not d.get("bulk")]
    toc = (samples / "toc.txt").read_text().splitlines()
    lines = {line.split("\t")[1].strip('"'): line for line in toc[1:] if line.count("\t") > 2}
    extra, copy = [], 0
    while len(base) + len(extra) < datasets:
        copy += 1
        for d in api:
            if len(base) + len(extra) >= datasets:
                break
            code = f"{d['code']}_c{copy}"
            extra.append({**d, "code": code, "title": f"{d['title']} (copy {copy})"})
            shutil.copyfile(samples / f"{d['code']}.json", samples / f"{code}.json")
            toc.append(lines[d["code"]].replace(f'"{d["code"]}"', f'"{code}"', 1))
    catalogue["eurostat_datasets"] = base + extra
    (samples / "toc.txt").write_text("\n".join(toc) + "\n")
    path = tmp / "catalogue.yml"
    path.write_text(yaml.safe_dump(catalogue, sort_keys=False, allow_unicode=True))
    return path, samples, len(base) + len(extra)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--date", default="2026-03-01")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from ingest.eurostat.replay import ReplayServer

    day = date.fromisoformat(args.date)
    with tempfile.TemporaryDirectory(prefix="ss4gl-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        catalogue, samples, wide = widen(tmp, args.datasets)
        with ReplayServer(samples) as server:
            common = {"OFFLINE": "0", "EUROSTAT_BASE_URL": server.base_url, "SURVEY_INBOX": str(SAMPLES / "inbox")}
            envs = {
                14: _env(tmp / "home14", **common),
                wide: _env(tmp / "home_wide", **common, SS4GL_CATALOGUE=str(catalogue)),
            }
            first = {}
            for n, env in envs.items():
                first[n] = _timed_run([SS4GL, "run", "--date", day.isoformat()], env)
                print(f"{n} datasets: first run {first[n]:.1f} s", flush=True)
            nights: dict[int, list[float]] = {n: [] for n in envs}
            for i in range(args.repeats):
                for n, env in envs.items():
                    nights[n].append(
                        _timed_run([SS4GL, "run", "--date", (day + timedelta(days=i + 1)).isoformat()], env)
                    )
                print(f"round {i + 1}: " + ", ".join(f"{n}: {v[-1]:.1f} s" for n, v in nights.items()), flush=True)
    med = {n: statistics.median(v) for n, v in nights.items()}
    ratio = med[wide] / med[14]
    rows = [f"| {n} | {first[n]:.1f} | {', '.join(f'{x:.1f}' for x in nights[n])} | {med[n]:.1f} |" for n in nights]
    text = "\n".join(
        [
            f"{HEADING} (issue #19)",
            "",
            f"Run {now()} on {machine_note()}. Command:",
            "",
            "  .venv/bin/python bench/bench_nightly_scale.py"
            + (f" --datasets {args.datasets}" if args.datasets != 50 else "")
            + (f" --repeats {args.repeats}" if args.repeats != 3 else ""),
            "",
            f"Two throwaway homes fed by one loopback Eurostat replay: the bundled catalogue (14 Eurostat datasets) and"
            f" one of {wide} (the bundled ones plus copies of its Statistics API datasets under new codes, in the"
            " table of contents too). A first run each, then interleaved no-change nights (`ss4gl run --date D+i`:"
            " the table of contents says nothing changed; nothing is downloaded). Whole `ss4gl run` wall times.",
            "",
            "| datasets | first run s | no-change nights s | median s |",
            "|---:|---:|---|---:|",
            *rows,
            "",
            f"- **{wide} datasets / 14 = {ratio:.2f}×** on the median no-change night (target ≤ {TARGET}×:"
            f" **{'met' if ratio <= TARGET else 'missed'}**).",
        ]
    )
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
