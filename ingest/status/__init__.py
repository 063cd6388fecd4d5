"""``ss4gl status``: the platform's state without SQL, read from the warehouse's audit trail (as the loader role,
in a read-only session).

* Last runs: ``audit.run_summaries`` (what the publish stage writes), newest first; a run with audit records but
  no summary yet is shown as ``unfinished`` (running now, or stopped before its publish task).
* Per Eurostat dataset of the catalogue: the last table-of-contents check, the last receipt (a download), the
  last batch and load, and Eurostat's own stamps (table of contents ``last update``; the ``updated`` stamp of the
  loaded version, ``raw.eurostat_observations.source_updated_at``).
* Per cluster and survey instrument: files received, the last receipt, the last loaded file (rows, wave).
* Open quarantines (``ingest.quarantine.open_quarantines``): batch, object and problem codes, never the message
  (``ss4gl quarantine list`` prints the reasons).
* The marts: when the current marts were last built, ``audit.source_state`` (source ``dbt``, object ``build``):
  written by the publish stage after a dbt build with no failed dbt task, and the one build builds every mart
  (``pg_stat_user_tables`` timestamps say when autovacuum last looked, not when dbt built). Rows per mart as the
  latest nightly run counted them; the backfilled dates kept in ``history``.
* The warehouse (its URL without secrets) and the storage in use.

Freshness is config as data (``catalogue.yml``, ``sources.<source>.freshness``):

* Eurostat, per dataset: hours since its last successful check, the later of a table-of-contents check that
  found it unchanged (decision ``skip``) and a receipt (a download; replays of the archive do not count):
  ``warn_after_hours`` (reported), ``error_after_hours`` (stale). Never checked is stale.
* Surveys, per cluster and instrument: days since the latest loaded file was received (its first receipt):
  ``max_age_days`` (one number, or one per instrument), yearly waves by default. Never loaded is stale.

* Eurostat's update stamp: a dataset whose latest table-of-contents ``last update`` is newer than the version the
  warehouse holds is behind (a warning, stale once that update is older than ``error_after_hours``).

The rules live in :mod:`ingest.status.freshness`; every nightly run applies them too (``audit.freshness_checks``,
its summary and alerts).

Exit status: 0 healthy, 1 the last run failed, 4 data stale (error), 2 the warehouse cannot be read. A failed last
run wins over staleness; warnings never change the status.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from ingest.config import Catalogue, load_catalogue
from ingest.status.freshness import (
    eurostat_freshness,
    findings,
    grade_eurostat,
    grade_survey,
    line,
    survey_max_age_days,
)
from ingest.warehouse import LOADER, WarehouseError, connect, redact

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_STALE = 0, 1, 2, 4
RUNS = 5

EXIT_HELP = (
    "exit status: 0 healthy; 1 the last run failed; 4 data are stale past the configured freshness"
    " (catalogue.yml sources.eurostat.freshness, sources.surveys.freshness); 2 the warehouse cannot be read."
    " A failed last run wins over staleness; freshness warnings never change the status."
)


# ------------------------------------------------------------------------------------------------- reading
def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def resolve_url() -> str:
    """The warehouse in use, never starting one: the configured URL, else the embedded server if it runs."""
    from ingest.warehouse import warehouse_url

    return warehouse_url(start=False)


def storage_in_use() -> str:
    from ingest.storage import default_storage, storage_url

    try:
        return default_storage().uri()
    except Exception as exc:  # noqa: BLE001 - status reports a broken storage, it never fails on one
        return f"{redact(storage_url())} (cannot be opened: {type(exc).__name__})"


def _runs(cur, limit: int) -> list[dict]:
    cur.execute(
        "select s.run_id, s.logical_date, s.finished_at, s.summary, s.started_at,"
        " least((select min(c.checked_at) from audit.dataset_checks c where c.run_id = s.run_id),"
        "       (select min(f.fetched_at) from audit.fetches f where f.run_id = s.run_id),"
        "       (select min(b.created_at) from audit.run_batches b where b.run_id = s.run_id))"
        " from audit.run_summaries s order by s.finished_at desc limit %s",
        (limit,),
    )
    runs = []
    for run_id, logical_date, finished, summary, started_at, first_record in cur.fetchall():
        summary = summary or {}
        started, basis = (started_at, "started_at") if started_at else (first_record, "first audit record")
        if started is None and summary.get("task_seconds"):
            seconds, basis = float(sum(summary["task_seconds"].values())), "task seconds (sum)"
        else:
            seconds = (finished - started).total_seconds() if started else None
        failed = list(summary.get("failed_tasks") or [])
        missing = list(summary.get("missing_marts") or [])
        quarantined = len(summary.get("quarantined") or [])
        outcome = summary.get("outcome") or (
            "failed" if failed or missing else "completed_with_quarantine" if quarantined else "success"
        )
        mode = summary.get("mode") or ("backfill" if summary.get("marts_schema") == "history" else "nightly")
        runs.append(
            {
                "run_id": run_id,
                "logical_date": _iso(logical_date),
                "mode": mode,
                "outcome": outcome,
                "started_at": _iso(started),
                "finished_at": _iso(finished),
                "duration_seconds": round(seconds, 1) if seconds is not None else None,
                "duration_from": basis if seconds is not None else None,
                "failed_tasks": failed,
                "missing_marts": missing,
                "quarantined": quarantined,
                "_sort": finished,
            }
        )
    # Runs with audit records and no summary: running now, or stopped before publish.
    cur.execute(
        "select a.run_id, max(a.logical_date), min(a.first_at), max(a.last_at), bool_or(a.replay) from ("
        "  select run_id, logical_date, checked_at as first_at, checked_at as last_at, decision = 'replay' as replay"
        "  from audit.dataset_checks"
        "  union all select run_id, logical_date, created_at, updated_at, false from audit.run_batches"
        ") a where not exists (select 1 from audit.run_summaries s where s.run_id = a.run_id)"
        " group by a.run_id order by max(a.last_at) desc limit %s",
        (limit,),
    )
    for run_id, logical_date, first_at, last_at, replay in cur.fetchall():
        runs.append(
            {
                "run_id": run_id,
                "logical_date": _iso(logical_date),
                "mode": "backfill" if replay or str(run_id).startswith("backfill__") else "nightly",
                "outcome": "unfinished",
                "started_at": _iso(first_at),
                "finished_at": None,
                "last_activity_at": _iso(last_at),
                "duration_seconds": None,
                "duration_from": None,
                "failed_tasks": [],
                "missing_marts": [],
                "quarantined": 0,
                "_sort": last_at,
            }
        )
    runs.sort(key=lambda r: r["_sort"], reverse=True)
    for r in runs:
        del r["_sort"]
    return runs[:limit]


def _latest_by_object(cur, query: str, params: tuple | None = None) -> dict[str, tuple]:
    cur.execute(query, params)
    return {row[0]: row[1:] for row in cur.fetchall()}


def _eurostat(cur, catalogue: Catalogue, now: datetime) -> list[dict]:
    cfg = eurostat_freshness(catalogue)
    codes = [d.code for d in catalogue.datasets] + [d.code for d in catalogue.sdmx_datasets]  # SDMX: one stage
    checks = _latest_by_object(
        cur,
        "select distinct on (object) object, checked_at, logical_date, decision, toc_last_update"
        " from audit.dataset_checks where source = 'eurostat' and decision <> 'replay'"
        " order by object, checked_at desc",
    )
    skips = _latest_by_object(
        cur,
        "select object, max(checked_at) from audit.dataset_checks"
        " where source = 'eurostat' and decision = 'skip' group by object",
    )
    receipts = _latest_by_object(
        cur,
        "select distinct on (object) object, received_at, logical_date, batch_id from audit.batch_receipts"
        " where source = 'eurostat' order by object, received_at desc, receipt_id desc",
    )
    batches = _latest_by_object(
        cur,
        "select distinct on (object) object, status, rows_loaded, updated_at from audit.batches"
        " where source = 'eurostat' order by object, updated_at desc",
    )
    loaded = _latest_by_object(
        cur,
        "select s.object, s.loaded_at, s.toc_last_update, b.rows_loaded from audit.source_state s"
        " left join audit.batches b using (batch_id) where s.source = 'eurostat'",
    )
    stamps = _latest_by_object(  # Eurostat's latest `last update` seen by a check (replays see no table of contents)
        cur,
        "select distinct on (object) object, toc_last_update from audit.dataset_checks where source = 'eurostat'"
        " and decision <> 'replay' and toc_last_update is not null order by object, checked_at desc",
    )
    # Eurostat's `updated` stamp of the loaded version: one value per dataset in raw (its latest batch); the
    # primary key (dataset, ...) makes this one index probe per dataset.
    updated = _latest_by_object(
        cur,
        "select c, (select o.source_updated_at from raw.eurostat_observations o where o.dataset = c limit 1)"
        " from unnest(%s::text[]) as c",
        (codes,),
    )
    out = []
    for code in codes:
        check, receipt, batch, load = checks.get(code), receipts.get(code), batches.get(code), loaded.get(code)
        candidates = [t for t in ((skips.get(code) or (None,))[0], receipt[0] if receipt else None) if t]
        last_ok = max(candidates) if candidates else None
        grade, age = grade_eurostat(last_ok, now, cfg)
        out.append(
            {
                "dataset": code,
                "last_check": {"at": _iso(check[0]), "logical_date": _iso(check[1]), "decision": check[2]}
                if check
                else None,
                "last_receipt": {"at": _iso(receipt[0]), "logical_date": _iso(receipt[1]), "batch_id": receipt[2]}
                if receipt
                else None,
                "last_batch": {"status": batch[0], "rows_loaded": batch[1], "at": _iso(batch[2])} if batch else None,
                "last_load": {"at": _iso(load[0]), "rows_loaded": load[2]} if load else None,
                "toc_last_update": _iso((check and check[3]) or (load and load[1]) or None),
                "latest_toc_last_update": _iso((stamps.get(code) or (None,))[0]),
                "loaded_toc_last_update": _iso(load[1] if load else None),
                "source_updated_at": _iso((updated.get(code) or (None,))[0]),
                "last_successful_check_at": _iso(last_ok),
                "age_hours": round(age, 1) if age is not None else None,
                "freshness": grade,
            }
        )
    return out


def _survey_wave_tables() -> dict[str, str]:
    """instrument -> the raw table whose ``wave`` says a file's wave (the contract's first table)."""
    from ingest.surveys.spec import contract_instruments, load_contract

    out = {}
    for instrument in contract_instruments():
        tables = list(load_contract(instrument).tables)
        if tables:
            out[instrument] = tables[0]
    return out


def _surveys(cur, catalogue: Catalogue, now: datetime) -> list[dict]:
    from psycopg2 import sql

    instruments = list((catalogue.sources.get("surveys") or {}).get("instruments") or [])
    cur.execute(
        "select split_part(b.object, '/', 1), split_part(b.object, '/', 2), b.batch_id, b.status, b.rows_loaded,"
        " b.updated_at, r.first_at, r.last_at, r.logical_date"
        " from audit.batches b left join lateral ("
        "   select min(x.received_at) as first_at, max(x.received_at) as last_at, max(x.logical_date) as logical_date"
        "   from audit.batch_receipts x where x.batch_id = b.batch_id) r on true"
        " where b.source = 'surveys'"
    )
    by_pair: dict[tuple[str, str], list[tuple]] = {}
    for cluster, instrument, *rest in cur.fetchall():
        by_pair.setdefault((cluster, instrument), []).append(tuple(rest))
    wave_tables = _survey_wave_tables()
    out = []
    for cluster in (c.id for c in catalogue.clusters):
        for instrument in instruments:
            rows = by_pair.get((cluster, instrument), [])
            received = [r for r in rows if r[5] is not None]
            last_receipt = max(received, key=lambda r: r[5]) if received else None
            done = [r for r in rows if r[1] == "loaded"]
            last = max(done, key=lambda r: (r[4] or r[3], r[3])) if done else None
            wave = None
            table = wave_tables.get(instrument)
            if last is not None and table:
                cur.execute("select to_regclass(%s) is not null", (f"raw.{table}",))
                if cur.fetchone()[0]:
                    cur.execute(
                        sql.SQL("select max(wave) from raw.{} where batch_id = %s").format(sql.Identifier(table)),
                        (last[0],),
                    )
                    wave = cur.fetchone()[0]
            max_age = survey_max_age_days(catalogue, instrument)
            grade, age = grade_survey((last[4] or last[3]) if last else None, now, max_age)
            out.append(
                {
                    "cluster": cluster,
                    "instrument": instrument,
                    "files": len(rows),
                    "quarantined": sum(1 for r in rows if r[1] == "quarantined"),
                    "last_receipt": {
                        "at": _iso(last_receipt[5]),
                        "logical_date": _iso(last_receipt[6]),
                        "status": last_receipt[1],
                    }
                    if last_receipt
                    else None,
                    "last_load": {
                        "received_at": _iso(last[4]),
                        "loaded_at": _iso(last[3]),
                        "rows_loaded": last[2],
                        "wave": wave,
                    }
                    if last
                    else None,
                    "max_age_days": max_age,
                    "age_days": round(age, 1) if age is not None else None,
                    "freshness": grade,
                }
            )
    return out


def _marts(cur) -> dict:
    cur.execute(
        "select object, loaded_at from audit.source_state where source = 'dbt' and object <> 'project'"
        " order by loaded_at desc"
    )
    builds = cur.fetchall()
    current = next((at for obj, at in builds if obj == "build"), None)
    asof = sorted(obj.split(":", 1)[1] for obj, _at in builds if obj.startswith("asof:"))
    cur.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'marts' and c.relkind in ('r', 'p', 'v', 'm') order by 1"
    )
    present = [r[0] for r in cur.fetchall()]
    cur.execute(
        "select run_id, summary->'marts', summary->'missing_marts' from audit.run_summaries"
        " where coalesce(summary->>'marts_schema', 'marts') = 'marts' and summary ? 'marts'"
        " order by finished_at desc limit 1"
    )
    row = cur.fetchone()
    counted_in, rows, missing = (row[0], row[1] or {}, row[2] or []) if row else (None, {}, [])
    names = sorted(set(present) | set(rows) | set(missing))
    return {
        "built_at": _iso(current),
        "built_at_from": "audit.source_state (dbt, build): the last successful dbt build, written by publish",
        "rows_counted_in_run": counted_in,
        "marts": [{"name": n, "present": n in present, "rows": rows.get(n)} for n in names],
        "history": {
            "dates": len(asof),
            "first": asof[0] if asof else None,
            "last": asof[-1] if asof else None,
            "last_built_at": _iso(next((at for obj, at in builds if obj.startswith("asof:")), None)),
        },
    }


def _quarantines() -> list[dict]:
    from ingest.quarantine import open_quarantines
    from ingest.surveys.privacy import scrub

    return [
        {
            "batch_id": scrub(q["batch_id"]),
            "source": q["source"],
            "object": scrub(q["object"]),
            "logical_date": q["logical_date"],
            "codes": q["codes"],
        }
        for q in open_quarantines()
    ]


def collect(now: datetime | None = None, runs: int = RUNS, catalogue: Catalogue | None = None) -> dict:
    """Everything ``ss4gl status`` prints, and its exit status; raises WarehouseError (one line) when the warehouse
    cannot be read."""
    import psycopg2
    from psycopg2 import errors

    now = now or datetime.now(UTC)
    catalogue = catalogue or load_catalogue()
    url = resolve_url()
    conn = connect(url, role=LOADER)
    try:
        conn.set_session(readonly=True)
        with conn, conn.cursor() as cur:
            doc = {
                "now": _iso(now),
                "warehouse": redact(url),
                "storage": storage_in_use(),
                "runs": _runs(cur, runs),
                "eurostat": _eurostat(cur, catalogue, now),
                "surveys": _surveys(cur, catalogue, now),
                "marts": _marts(cur),
            }
        doc["quarantines"] = _quarantines()
    except (errors.UndefinedTable, errors.InvalidSchemaName):
        raise WarehouseError(
            f"the warehouse at {redact(url)} is not migrated (no audit tables): run `ss4gl warehouse migrate`"
        ) from None
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WarehouseError(f"cannot read the warehouse at {redact(url)}: {first}") from None
    finally:
        conn.close()
    doc["freshness"] = {
        "eurostat": eurostat_freshness(catalogue),
        "surveys": {
            i: survey_max_age_days(catalogue, i)
            for i in (catalogue.sources.get("surveys") or {}).get("instruments", [])
        },
    }
    doc["findings"] = findings(doc["eurostat"], doc["surveys"], now, doc["freshness"]["eurostat"])
    problems, stale = [], False
    finished = [r for r in doc["runs"] if r["outcome"] != "unfinished"]
    failed = bool(finished) and finished[0]["outcome"] == "failed"
    if not finished:
        problems.append("NO RUN recorded yet (`ss4gl run` runs the nightly pipeline once)")
    elif failed:
        r = finished[0]
        problems.append(
            f"LAST RUN FAILED {r['run_id']} ({r['logical_date']}): failed tasks "
            f"{', '.join(r['failed_tasks']) or 'none'}; missing marts {', '.join(r['missing_marts']) or 'none'}"
        )
    # Freshness: the findings' lines (freshness.line), objects never checked or loaded grouped in one line per source.
    for source, never_text in (("eurostat", "never checked successfully"), ("surveys", "no file loaded yet")):
        mine = [f for f in doc["findings"] if f["source"] == source and f["grade"] != "ok"]
        never = [f["object"] for f in mine if f["never"]]
        if never:
            problems.append(f"STALE {source}, {never_text}: {', '.join(never)}")
        problems += [line(f) for f in mine if not f["never"]]
        stale = stale or any(f["grade"] == "stale" for f in mine)
    status = EXIT_FAILED if failed else EXIT_STALE if stale else EXIT_OK
    doc["problems"] = problems
    doc["health"] = {EXIT_OK: "healthy", EXIT_FAILED: "last_run_failed", EXIT_STALE: "stale"}[status]
    doc["exit_status"] = status
    return doc


def check_freshness(cur, now: datetime | None = None, catalogue: Catalogue | None = None) -> list[dict]:
    """The freshness findings (``freshness.findings``) as of ``now``, read with the caller's cursor (a run's
    publish stage records them in ``audit.freshness_checks``)."""
    now = now or datetime.now(UTC)
    catalogue = catalogue or load_catalogue()
    return findings(_eurostat(cur, catalogue, now), _surveys(cur, catalogue, now), now, eurostat_freshness(catalogue))
