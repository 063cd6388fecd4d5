"""Quarantined batches: list the open ones, release one so that the next run tries its content again.

A quarantined batch (a survey file, a Eurostat dataset version) is never retried on later nights unless its
bytes change (a new file, a new Eurostat release) or an operator releases it here, e.g. after fixing a
codebook or a suite. ``ss4gl quarantine list`` / ``ss4gl quarantine release SOURCE OBJECT``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ingest.warehouse import LOADER, connect


def open_quarantines(source: str | None = None) -> list[dict]:
    """Quarantined batches (latest first) with their problem codes; messages are already free of cell values."""
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select b.batch_id, b.source, b.object, b.logical_date, b.reason,"
            " coalesce(array_agg(distinct q.code) filter (where q.severity in ('error', 'critical')), '{}')"
            " from audit.batches b left join audit.quarantine q using (batch_id)"
            " where b.status = 'quarantined' and (%s::text is null or b.source = %s)"
            " group by b.batch_id order by b.updated_at desc",
            (source, source),
        )
        rows = cur.fetchall()
    conn.close()
    keys = ("batch_id", "source", "object", "logical_date", "reason", "codes")
    return [
        dict(zip(keys, (*r[:3], r[3].isoformat() if r[3] else None, r[4], sorted(r[5])), strict=True)) for r in rows
    ]


def release(source: str, obj: str) -> list[str]:
    """Mark the quarantined batches of ``obj`` (an object or a batch id) as released; return their batch ids."""
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        cur.execute(
            "update audit.batches set status = 'released', updated_at = now(),"
            " meta = meta || jsonb_build_object('released_at', now()::text)"
            " where status = 'quarantined' and source = %s and (object = %s or batch_id = %s) returning batch_id",
            (source, obj, obj),
        )
        ids = [r[0] for r in cur.fetchall()]
    conn.close()
    return ids


def register(subparsers: argparse._SubParsersAction) -> None:
    q = subparsers.add_parser("quarantine", help="quarantined batches: list them, release one for the next run")
    sub = q.add_subparsers(dest="quarantine_command", required=True)
    ls = sub.add_parser("list", help="open quarantines: source, object, codes, first reason")
    ls.add_argument("--source", choices=["eurostat", "surveys"])
    ls.add_argument("--json", action="store_true", help="one JSON document (for machines)")
    ls.set_defaults(func=_cmd_list)
    rel = sub.add_parser("release", help="let the next run try a quarantined batch again (same bytes)")
    rel.add_argument("source", choices=["eurostat", "surveys"])
    rel.add_argument("object", help="dataset code, inbox path <cluster>/<instrument>/<file>, or a batch id")
    rel.set_defaults(func=_cmd_release)


def _cmd_list(args: argparse.Namespace) -> int:
    rows = open_quarantines(args.source)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no open quarantine")
    for r in rows:
        print(f"{r['source']} {r['object']} [{', '.join(r['codes']) or '-'}] since {r['logical_date']}: {r['reason']}")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    ids = release(args.source, args.object)
    if not ids:
        print(
            f"error: no quarantined {args.source} batch {args.object!r} (see `ss4gl quarantine list`)", file=sys.stderr
        )
        return 1
    for batch_id in ids:
        print(f"released {batch_id}: the next run tries it again")
    return 0
