"""``eurostat`` CLI subcommands (wired into ``ingest/cli.py`` by ``register``; heavy imports inside commands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``eurostat decode FILE [-o OUT.csv] [--dataset CODE]``; subcommands set ``func(args) -> int``."""
    parser = subparsers.add_parser("eurostat", help="Eurostat source tools")
    sub = parser.add_subparsers(dest="eurostat_command", required=True)
    dec = sub.add_parser("decode", help="decode a Eurostat body (JSON-stat, TSV, SDMX-CSV; gzip ok) to CSV")
    dec.add_argument("file", type=Path)
    dec.add_argument("-o", "--output", type=Path, default=None, help="CSV file to write (default: stdout)")
    dec.add_argument("--dataset", default=None, help="dataset code (default: from the body; TSV bodies have none)")
    dec.set_defaults(func=cmd_decode)
    fetch = sub.add_parser("fetch", help="fetch one catalogue dataset into the archive and raw (validate-then-load)")
    fetch.add_argument("dataset", help="catalogue dataset code, e.g. nama_10r_2gdp")
    fetch.set_defaults(func=cmd_fetch)
    return parser


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch → archive → validate (GX) → load one dataset, printing each step."""
    from datetime import UTC, date, datetime

    from ingest.config import load_catalogue
    from ingest.eurostat.errors import EurostatError
    from ingest.tasks import eurostat, gate
    from ingest.tasks.common import RunContext
    from ingest.warehouse import migrate

    try:
        load_catalogue().dataset(args.dataset)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    migrate()
    ctx = RunContext(
        run_id=f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}__{args.dataset}", logical_date=date.today().isoformat()
    )
    step = lambda text: print(f"[{datetime.now():%H:%M:%S}] {args.dataset}: {text}", file=sys.stderr, flush=True)  # noqa: E731
    step(f"fetching from {load_catalogue().eurostat['base_url']}")
    try:
        got = eurostat.extract(ctx, args.dataset)
    except EurostatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    step(f"archived {got['parts']} part(s), {got['bytes']:,} bytes; validating")
    if got.get("status") == "quarantined":
        print(f"QUARANTINED: {args.dataset}: the body is not data (`ss4gl quarantine list`)", file=sys.stderr)
        return 1
    checked = gate.validate(ctx, eurostat.SOURCE, eurostat.prepare)
    if checked.get("summary"):
        print(f"QUARANTINED: {checked['summary']}", file=sys.stderr)
        return 1
    step(f"validated {checked['rows']:,} rows; loading")
    loaded = gate.load(ctx, eurostat.SOURCE, after_load=eurostat.remember_loaded)
    step(f"loaded {loaded['rows']:,} rows into raw.eurostat_observations")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    """Write the long table of ``args.file`` as CSV; exit 2 with one stderr line if it is not data."""
    from ingest.eurostat.decode import decode  # pandas / Arrow: imported only when the command runs
    from ingest.eurostat.errors import EurostatPayloadError
    from ingest.eurostat.frames import write_csv

    path: Path = args.file
    try:
        payload = path.read_bytes()
    except OSError as exc:
        print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        frame = decode(payload, args.dataset)
    except EurostatPayloadError as exc:
        print(f"error: {path}: {exc.problem}", file=sys.stderr)
        return 2
    return write_csv(frame, args.output)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m ingest.eurostat.commands decode FILE``."""
    parser = argparse.ArgumentParser(prog="ss4gl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eurostat", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
