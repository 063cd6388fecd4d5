"""``surveys`` CLI subcommands (registered into the lead's ``ingest.cli`` via :func:`register`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # pandas: imported only when a command runs, not when the CLI builds its parser
    from ingest.surveys.parse import ParseResult


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``surveys check`` and ``surveys codebook init`` to an argparse subparsers object; handlers are stored as
    ``args.func``."""
    surveys = subparsers.add_parser("surveys", help="cluster survey files (SME needs, state of affairs)")
    sub = surveys.add_subparsers(dest="surveys_command", required=True)
    check = sub.add_parser("check", help="parse one survey file and say whether it would load (writes nothing)")
    check.add_argument("file", type=Path)
    check.add_argument("--cluster", help="cluster id (default: from <cluster>/<instrument>/<file>)")
    check.add_argument("--instrument", help="state_of_affairs or sme_needs (default: from the path)")
    check.add_argument("--max-bytes", type=int, default=None, help="override the configured size limit")
    check.add_argument("--codebook", type=Path, help="parse with this codebook file only (e.g. a drafted one)")
    check.set_defaults(func=cmd_check)
    books = sub.add_parser("codebook", help="survey codebooks (export layouts mapped onto the data contract)")
    books_sub = books.add_subparsers(dest="codebook_command", required=True)
    init = books_sub.add_parser(
        "init", help="draft a codebook from an export's headers and answers (LimeSurvey CSV/XLSX, Kobo JSON)"
    )
    init.add_argument("file", type=Path)
    init.add_argument("--instrument", required=True, help="state_of_affairs or sme_needs")
    init.add_argument("--language", required=True, help="the export's language (e.g. de)")
    init.add_argument("-o", "--output", type=Path, required=True, help="the draft codebook (YAML) to write")
    init.set_defaults(func=cmd_codebook_init)
    return surveys


def cmd_codebook_init(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Write a draft codebook; exit 0 (a line saying how much was matched) or 2 with one line saying why not."""
    from ingest.config import load_catalogue
    from ingest.surveys.draft import DraftError, draft, render

    out = out or sys.stdout
    limit = int(load_catalogue().sources["surveys"]["max_file_bytes"])
    try:
        with args.file.open("rb") as fh:  # bounded like every survey file
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise DraftError(f"larger than the configured limit of {limit} bytes")
        result = draft(data, args.file.name, args.instrument)
        text = render(
            result,
            instrument=args.instrument,
            language=args.language,
            source=args.file.name,
        )
    except (OSError, DraftError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(f"error: {args.file}: {reason}", file=sys.stderr)
        return 2
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: {args.output}: cannot write the draft ({exc.strerror or exc})", file=sys.stderr)
        return 2
    mapped = sum(1 for c in result.columns if c.target)
    print(
        f"wrote {args.output}: {mapped} of {len(result.columns)} columns matched to contract fields, "
        f"{len(result.columns) - mapped} listed under ignore for a person to map ({result.records} records read)",
        file=out,
    )
    return 0


def verdict(result: ParseResult) -> str:
    """One-line verdict: ``OK: would load ...`` or ``QUARANTINE: ...``."""
    if result.ok:
        total = sum(result.row_counts.values())
        parts = ", ".join(f"raw.{t} ({n})" for t, n in result.row_counts.items())
        return (
            f"OK: would load {total} rows into {parts} "
            f"[codebook {result.codebook}, wave {result.wave}, {len(result.warnings)} warnings]"
        )
    return f"QUARANTINE: {result.file}: {len(result.errors)} errors, {len(result.warnings)} warnings" + (
        f" [codebook {result.codebook}]" if result.codebook else ""
    )


def cmd_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit 0 when the file would load, 1 when it would be quarantined, 2 when ``--codebook`` is no codebook."""
    from ingest.config import load_catalogue
    from ingest.surveys.parse import parse_file
    from ingest.surveys.privacy import ephemeral_key

    out = out or sys.stdout
    path: Path = args.file
    cluster = args.cluster or path.resolve().parent.parent.name
    instrument = args.instrument or path.resolve().parent.name
    limit = args.max_bytes if args.max_bytes is not None else int(load_catalogue().sources["surveys"]["max_file_bytes"])
    try:
        with path.open("rb") as fh:  # never more than the limit (+1, to tell "too large") in memory
            data = fh.read(limit + 1)
    except OSError as exc:
        print(f"QUARANTINE: {path}: cannot read file ({exc.strerror or exc})", file=out)
        return 1
    codebooks = None
    if getattr(args, "codebook", None) is not None:  # absent when called with a hand-built Namespace
        from ingest.surveys.draft import DraftError, load_draft

        try:
            codebooks = (load_draft(args.codebook),)
        except DraftError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not args.instrument:
            instrument = codebooks[0].instrument
    # Pseudonyms are only needed to detect duplicates here: a throwaway key, never the real one.
    result = parse_file(
        data,
        path.name,
        cluster,
        instrument,
        key=ephemeral_key(),
        max_bytes=limit,
        catalogue=load_catalogue(),
        codebooks=codebooks,
    )
    gx: list[dict] = []
    if result.ok:  # the same GX suites as the pipeline's validate task: a file passing here loads
        from ingest.tasks.gate import check_only
        from ingest.tasks.surveys import checks_for

        gx = check_only(path.name, checks_for(result.tables, cluster))
    if gx:
        print(f"QUARANTINE: {result.file}: {len(gx)} failed expectations [codebook {result.codebook}]", file=out)
    else:
        print(verdict(result), file=out)
    for p in result.problems:
        print(f"{p.severity.upper()} {p.code}: {p.message}", file=out)
    for p in gx:
        print(f"{p['severity'].upper()} {p['code']}: {p['message']}", file=out)
    return 0 if result.ok and not gx else 1
