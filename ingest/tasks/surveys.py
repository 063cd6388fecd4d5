"""Survey stage of the nightly run: pick up new inbox files → archive → validate (contract + GX) → load."""

from __future__ import annotations

import hashlib

from ingest.archive import Archive, Received
from ingest.config import survey_inbox
from ingest.tasks.common import (
    Batch,
    RunContext,
    log,
    record_batch,
    record_fetch,
    record_quarantine,
    record_receipt,
)
from ingest.warehouse import LOADER, connect

SOURCE = "surveys"


def extract(ctx: RunContext, inbox: str | None = None) -> dict:
    """Archive every inbox file not processed before (by content hash) and register it as a received batch."""
    from ingest.config import load_catalogue
    from ingest.surveys.inbox import list_inbox, open_file, read, sha256_of, too_large

    inbox = inbox or survey_inbox()
    limit = int(load_catalogue().sources["surveys"]["max_file_bytes"])
    archive = Archive()
    files = list_inbox(inbox)
    conn = connect(role=LOADER)
    new = seen = unreadable = 0
    with conn, conn.cursor() as cur:
        cur.execute(
            "select unnest(sha256) from audit.batches where source = %s and status in ('loaded', 'quarantined')",
            (SOURCE,),
        )
        done = {r[0] for r in cur.fetchall()}
        this_run: dict[str, str] = {}  # sha256 -> first inbox file with this content in this run
        for f in files:
            try:
                data = read(f, limit) if f.size <= limit else None  # a file listed over the limit is never read
                if data is not None and len(data) > limit:  # grown past the limit since it was listed
                    data = None
                sha = hashlib.sha256(data).hexdigest() if data is not None else sha256_of(f)
                if sha in done:
                    seen += 1
                    continue
                if data is not None:
                    archive.put(Received(body=data, source=SOURCE, url=f.path))
                    size = len(data)
                else:  # archived as received all the same, streamed in chunks
                    with open_file(f) as fh:
                        sha, size = archive.put_stream(fh, source=SOURCE, url=f.path)
            except OSError as exc:  # vanished or unreadable since it was listed: one file, tried again next run
                log.warning(
                    "surveys %s: cannot be read (%s); left in the inbox for the next run",
                    f.relative,
                    type(exc).__name__,
                )
                unreadable += 1
                continue
            record_fetch(cur, ctx, SOURCE, f.path, f.path, None, sha, size)
            batch = Batch(
                source=SOURCE,
                object=f"{f.cluster}/{f.instrument}/{f.name}",
                sha256=[sha],
                meta={"cluster": f.cluster, "instrument": f.instrument, "path": f.path, "name": f.name},
            )
            problems = [p.to_dict() for p in f.problems]
            if data is None and size > limit:
                problems.append(too_large(f, size, limit).to_dict())
            if sha in this_run:  # the same file dropped twice (another name or folder): load it once
                problems.append(
                    {
                        "severity": "error",
                        "code": "duplicate_file",
                        "file": f.relative,
                        "row": None,
                        "column": None,
                        "expected": "a file not received before",
                        "found": f"same content as {this_run[sha]}",
                        "message": f"{f.relative}: row -, column -: same content (sha256 {sha[:12]}) as "
                        f"{this_run[sha]} received in this run; loaded once",
                    }
                )
            if not problems:
                this_run.setdefault(sha, f.relative)
            if problems:  # misplaced (wrong depth, unknown cluster folder or instrument), too large or duplicate
                batch.status, batch.reason = "quarantined", problems[0]["message"]
                record_quarantine(cur, batch, problems)
                write_reason(batch, problems)
            record_batch(cur, ctx, batch)
            record_receipt(cur, ctx, batch)
            new += 1
    conn.close()
    log.info("surveys: %s new file(s), %s already processed, %s unreadable, inbox %s", new, seen, unreadable, inbox)
    return {"new": new, "already_processed": seen, **({"unreadable": unreadable} if unreadable else {})}


def prepare(batch: Batch):
    """Parse an archived survey file against its codebook into raw tables and their GX checks."""
    from ingest.surveys.parse import parse_file
    from ingest.surveys.privacy import key_id, load_key
    from ingest.tasks.gate import BatchRejected, Prepared

    data = Archive().get(batch.sha256[0])
    key = load_key()
    result = parse_file(data, batch.meta["name"], batch.meta["cluster"], batch.meta["instrument"], key=key)
    problems = [p.to_dict() if hasattr(p, "to_dict") else vars(p) for p in result.problems]
    if not result.ok:
        raise BatchRejected(
            [p for p in problems if p.get("severity") == "error"]
            + [p for p in problems if p.get("severity") != "error"]
        )
    # A load replaces only this file's rows: a corrected file re-submitted for the same cluster x wave is loaded
    # beside the one it supersedes (kept for lineage); dbt's latest_survey_file picks the later arrival.
    return Prepared(
        tables=result.tables,
        checks=checks_for(result.tables, batch.meta["cluster"]),
        partition={"file_sha256": batch.sha256[0]},
        warnings=[p for p in problems if p.get("severity") != "error"],
        meta={"pseudonym_key_id": key_id(key)},
    )


def checks_for(tables: dict, cluster: str) -> list[tuple[str, object, dict]]:
    """The GX checks of a parsed survey file: one suite per raw table, named after it."""
    from ingest.validation.suites import uses_cluster_context

    return [
        (table, frame, {"cluster": cluster} if uses_cluster_context(table) else {}) for table, frame in tables.items()
    ]


def write_reason(batch: Batch, problems: list[dict]) -> None:
    """Keep the machine-readable reason beside the quarantined file in the inbox."""
    from ingest.surveys.inbox import write_reason as _write

    try:
        _write(batch.meta["path"], problems)
    except Exception as exc:  # noqa: BLE001 - a read-only inbox must not hide the quarantine itself
        log.warning("could not write the quarantine reason beside %s: %s", batch.meta["path"], exc)
