"""``ss4gl`` command line: run the nightly pipeline locally, manage the warehouse, inspect sources."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

# Each module below may offer `register(subparsers)` for its own sub-commands.
_COMMAND_MODULES = (
    "ingest.eurostat.commands",
    "ingest.sdmx.commands",
    "ingest.surveys.commands",
    "ingest.dashboard.commands",
    "ingest.quarantine",
    "ingest.partnership",
    "ingest.status.commands",
    "ingest.ui",
)


# Exit status of `ss4gl run` / `ss4gl backfill`: a data problem is told apart from a broken pipeline.
EXIT_OK, EXIT_FAILED, EXIT_QUARANTINED = 0, 1, 3


def _cmd_run(args: argparse.Namespace) -> int:
    if args.prepare_only:
        from ingest.localrun import prepare_local

        print(f"local Airflow home ready: {prepare_local()}")
        return EXIT_OK
    if args.offline:
        os.environ["OFFLINE"] = "1"
    from ingest.localrun import run_nightly

    return _print_run(*run_nightly(args.date, {"rebuild": True} if args.rebuild else None))


def _print_run(ok: bool, summary: dict | None, log_file, alerts: list[str]) -> int:
    """Print the summary and alerts; return the exit status (0 success, 3 completed with quarantines, 1 failed)."""
    from ingest.tasks.publish import format_summary

    print(format_summary(summary) if summary else "no run summary was written (the run stopped before publish)")
    print(f"  task log: {log_file}")
    for line in dict.fromkeys(alerts):
        print(f"  ALERT {line}", file=sys.stderr)
    if not ok:
        print(f"RUN FAILED: see the alerts above and {log_file}", file=sys.stderr)
        return EXIT_FAILED
    if summary and summary.get("quarantined"):
        print(
            f"COMPLETED WITH {len(summary['quarantined'])} QUARANTINED: every other batch loaded and the marts"
            " were built; see `ss4gl quarantine list`",
            file=sys.stderr,
        )
        return EXIT_QUARANTINED
    return EXIT_OK


def _cmd_backfill(args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    if args.offline:
        os.environ["OFFLINE"] = "1"
    from ingest.localrun import run_dates

    start, end = date.fromisoformat(args.from_date), date.fromisoformat(args.to_date)
    if end < start:
        print("error: --to is before --from", file=sys.stderr)
        return 2
    dates = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    results = run_dates(dates, {"mode": "backfill", "refetch": bool(args.refetch), "rebuild": bool(args.rebuild)})
    codes = [_print_run(*r) for r in results]
    return EXIT_FAILED if EXIT_FAILED in codes else max(codes, default=EXIT_OK)


def _cmd_warehouse(args: argparse.Namespace) -> int:
    from ingest import warehouse

    if args.action == "url":
        print(warehouse.warehouse_url())
    elif args.action == "start":
        print(warehouse.redact(warehouse.warehouse_url()))
    elif args.action == "migrate":
        from ingest.partnership import load_partnership

        applied = warehouse.migrate()
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
        print(f"partnership configuration: {load_partnership()}")
    elif args.action == "stop":
        if warehouse.configured_url():
            print("WAREHOUSE_URL (or AIRFLOW_CONN_WAREHOUSE) points at an external server: nothing to stop")
        else:
            print("stopped" if warehouse.EmbeddedServer().stop() else "embedded warehouse was not running")
    elif args.action == "bi-reader":
        creds = warehouse.enable_bi_reader()
        print("BI connection (read-only, schema marts):")
        for key, value in creds.items():
            print(f"  {key}: {value}")
    elif args.action == "psql":
        cmd = warehouse.psql_command()
        os.execv(cmd[0], cmd + list(args.psql_args))
    return 0


def _cmd_dbt(args: argparse.Namespace) -> int:
    from ingest.tasks.transform import write_manifest

    print(write_manifest())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ss4gl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run ss4gl_nightly once for a logical date (local Airflow, dag.test)")
    run.add_argument("--date", help="logical date YYYY-MM-DD (default: yesterday)")
    run.add_argument("--offline", action="store_true", help="replay the bundled samples instead of live Eurostat")
    run.add_argument("--rebuild", action="store_true", help="build every dbt model even if no source changed")
    run.add_argument(
        "--prepare-only",
        action="store_true",
        help="migrate the local Airflow home's metadata DB and exit (make install does it once per Airflow version)",
    )
    run.set_defaults(func=_cmd_run)

    bf = sub.add_parser("backfill", help="rebuild logical dates from the raw archive (local mode, dag.test)")
    bf.add_argument("--from", dest="from_date", required=True, help="first logical date YYYY-MM-DD")
    bf.add_argument("--to", dest="to_date", required=True, help="last logical date YYYY-MM-DD (inclusive)")
    bf.add_argument("--refetch", action="store_true", help="download sources again instead of replaying")
    bf.add_argument("--offline", action="store_true", help="with --refetch: replay the bundled samples")
    bf.add_argument("--rebuild", action="store_true", help="build every dbt model in each run")
    bf.set_defaults(func=_cmd_backfill)

    wh = sub.add_parser("warehouse", help="the Postgres warehouse (embedded by default, or WAREHOUSE_URL)")
    wh.add_argument("action", choices=["url", "start", "stop", "psql", "migrate", "bi-reader"])
    wh.add_argument("psql_args", nargs=argparse.REMAINDER, help="extra arguments for psql")
    wh.set_defaults(func=_cmd_warehouse)

    dbt = sub.add_parser("dbt", help="the dbt project")
    dbt.add_argument("action", choices=["manifest"], help="manifest: dbt parse into dbt_project/target (Cosmos)")
    dbt.set_defaults(func=_cmd_dbt)

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ingest.config import ensure_runtime_dir

    ensure_runtime_dir()
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.basicConfig(level=os.environ.get("SS4GL_LOG_LEVEL", "WARNING"), format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    from ingest.archive import ArchiveError
    from ingest.partnership import ConfigurationError
    from ingest.tasks.transform import DbtFailed
    from ingest.warehouse import WarehouseError

    expected: tuple[type[BaseException], ...] = (WarehouseError, ArchiveError, DbtFailed, ConfigurationError)
    try:
        from ingest.localrun import LocalRunError

        expected += (LocalRunError,)
    except ImportError:
        pass
    try:
        return args.func(args) or 0
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
