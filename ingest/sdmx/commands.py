"""``sdmx`` CLI subcommands (wired into ``ingest/cli.py`` by ``register``; heavy imports inside commands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``sdmx decode FILE [--dsd DSD] [-o OUT.csv] [--dataset ID]``."""
    parser = subparsers.add_parser("sdmx", help="SDMX data of statistics offices and international providers")
    sub = parser.add_subparsers(dest="sdmx_command", required=True)
    dec = sub.add_parser(
        "decode",
        help="decode an SDMX data message (SDMX-CSV 1.0/2.0, SDMX-ML 2.0/2.1, SDMX-JSON 1.0/2.0; gzip ok) to CSV",
    )
    dec.add_argument("file", type=Path)
    dec.add_argument(
        "--dsd",
        type=Path,
        default=None,
        help="data structure definition (SDMX-ML 2.1 structure message): which XML attributes of a structure-specific"
        " message are dimensions, and their order",
    )
    dec.add_argument("-o", "--output", type=Path, default=None, help="CSV file to write (default: stdout)")
    dec.add_argument("--dataset", default=None, help="name of the table (default: the dataflow the message names)")
    dec.set_defaults(func=cmd_decode)
    return parser


def cmd_decode(args: argparse.Namespace) -> int:
    """Write the long table of ``args.file`` as CSV; exit 2 with one stderr line if it cannot be read as data."""
    from ingest.eurostat.frames import write_csv
    from ingest.sdmx.decode import decode_sdmx, read_body
    from ingest.sdmx.errors import SdmxError
    from ingest.sdmx.structure import read_dsd

    where = args.file
    try:
        dsd = None
        if args.dsd is not None:
            where = args.dsd
            dsd = read_dsd(read_body(args.dsd))
        where = args.file
        frame = decode_sdmx(read_body(args.file), dsd, args.dataset)
    except OSError as exc:
        print(f"error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except SdmxError as exc:
        print(f"error: {where}: {exc.problem}", file=sys.stderr)
        return 2
    return write_csv(frame, args.output)
