"""``dashboard`` CLI subcommands (registered into ``ingest.cli`` via :func:`register`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``dashboard build [-o DIR]``; the handler is stored as ``args.func`` (returns an exit code)."""
    dashboard = subparsers.add_parser("dashboard", help="static HTML strategy dashboard from the marts")
    sub = dashboard.add_subparsers(dest="dashboard_command", required=True)
    build = sub.add_parser(
        "build",
        help="write index.html + one page per cluster (opens offline, no web server needed)",
    )
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: <state dir>/dashboard)",
    )
    build.set_defaults(func=cmd_build)
    return dashboard


def cmd_build(args: argparse.Namespace) -> int:
    from ingest.config import state_dir
    from ingest.dashboard.build import build_dashboard
    from ingest.warehouse import warehouse_url

    out_dir = args.output if args.output is not None else state_dir() / "dashboard"
    try:
        index = build_dashboard(warehouse_url(), out_dir)
    except OSError as exc:
        print(f"error: cannot write the dashboard to {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(index)
    return 0
