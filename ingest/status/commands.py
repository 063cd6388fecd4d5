"""``ss4gl status`` command (exit 0 healthy, 1 last run failed, 4 stale, 2 warehouse unreadable)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from ingest.status import EXIT_HELP, EXIT_UNREACHABLE, RUNS, collect
from ingest.status.text import format_status
from ingest.warehouse import WarehouseError


def _parse_now(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO timestamp: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status",
        help="the platform's state: last runs, sources, quarantines, marts, freshness (exit 0/1/4, 2 unreachable)",
        description="The platform's state read from the warehouse's audit trail: last runs, per source object its"
        " last receipt and load, open quarantines, when the marts were built, the warehouse and storage in use."
        " Never starts the embedded warehouse.",
        epilog=EXIT_HELP,
    )
    p.add_argument("--json", action="store_true", help="one JSON document (for machines)")
    p.add_argument("--runs", type=int, default=RUNS, help=f"how many runs to list (default {RUNS})")
    p.add_argument(
        "--now",
        type=_parse_now,
        help="evaluate freshness at this time (ISO timestamp, UTC unless it says otherwise; default: now)",
    )
    p.set_defaults(func=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        doc = collect(now=args.now, runs=max(1, args.runs))
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback (a monitor reads this)
        text = str(exc) if isinstance(exc, WarehouseError) else f"status failed: {type(exc).__name__}: {exc}"
        line = " ".join((text.strip().splitlines() or [type(exc).__name__])[0].split())
        if args.json:
            print(json.dumps({"error": line, "exit_status": EXIT_UNREACHABLE}))
        else:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(doc, indent=2) if args.json else format_status(doc))
    return doc["exit_status"]
