"""Publish stage: a backfill's marts into ``history``, the run summary in ``audit.run_summaries`` (what
``make run`` prints), a nightly run's freshness findings in ``audit.freshness_checks`` (one alert per stale source
object) and, after a successful build, the fingerprints the next run's ``dbt_needed`` compares. ``build_docs``
publishes the dbt docs, the dashboard and the index of the GX Data Docs sites."""

from __future__ import annotations

import json
import logging

from psycopg2 import sql

from ingest.config import DAG_ID, GX_DOCS, QUARANTINE_TASK, gx_docs_dir, load_catalogue
from ingest.storage import default_storage
from ingest.tasks.common import RunContext
from ingest.tasks.transform import ASOF_PREFIX, HISTORY_SCHEMA, history_marts, project_relations, remember_build
from ingest.warehouse import LOADER, READER, TRANSFORMER, connect, redact, storable, warehouse_url

log = logging.getLogger("ss4gl")


class RunHadProblems(RuntimeError):
    """Raised after the summary is written when a task failed (a broken pipeline): the run fails."""


class DataQuarantined(RuntimeError):
    """Raised by the quarantine report when the run quarantined batches (a data problem): the run succeeds."""


def quarantined_in_run(ctx: RunContext) -> list[str]:
    """One line per batch this run quarantined: source, object and the first reason."""
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select source, object, reason from audit.run_batches where run_id = %s and status = 'quarantined'"
            " order by source, object",
            (ctx.run_id,),
        )
        rows = cur.fetchall()
    conn.close()
    return [f"{source} {obj}: {reason}" for source, obj, reason in rows]


def outcome(summary: dict) -> str:
    """success | completed_with_quarantine | failed (see README, "Run outcomes")."""
    if summary["failed_tasks"] or summary.get("missing_marts") or unreachable(summary):
        return "failed"
    return "completed_with_quarantine" if summary["quarantined"] else "success"


def unreachable(summary: dict) -> list[str]:
    """Sources whose datasets could not be planned in this run (decision ``error``: Eurostat's table of contents
    unreachable past the retries): a pipeline problem, so the run fails, though the other sources loaded."""
    return sorted(s for s, got in summary.get("sources", {}).items() if got.get("decisions", {}).get("error"))


def _table_exists(cur, qualified: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (qualified,))
    return cur.fetchone()[0]


def collect(cur, ctx: RunContext) -> dict:
    sources: dict[str, dict] = {}
    cur.execute(
        "select source, count(*), coalesce(sum(size_bytes), 0) from audit.fetches where run_id = %s group by source",
        (ctx.run_id,),
    )
    for source, n, size in cur.fetchall():
        sources.setdefault(source, {}).update(archived_objects=n, archived_bytes=int(size))
    cur.execute(
        "select source, decision, count(*) from audit.dataset_checks where run_id = %s group by 1, 2", (ctx.run_id,)
    )
    for source, decision, n in cur.fetchall():
        sources.setdefault(source, {}).setdefault("decisions", {})[decision] = n
    cur.execute(
        "select source, status, count(*), coalesce(sum(rows_parsed), 0), coalesce(sum(rows_loaded), 0)"
        " from audit.run_batches where run_id = %s group by 1, 2",  # this run's own (common.record_batch)
        (ctx.run_id,),
    )
    for source, status, n, parsed, loaded in cur.fetchall():
        s = sources.setdefault(source, {})
        s.setdefault("batches", {})[status] = n
        s["rows_validated"] = s.get("rows_validated", 0) + (int(parsed) if status in ("validated", "loaded") else 0)
        s["rows_loaded"] = s.get("rows_loaded", 0) + int(loaded)
    cur.execute(  # one entry per quarantined batch: its first reason and every problem code
        "select b.source, b.object, b.reason, array_agg(distinct q.code order by q.code)"
        " from audit.run_batches b join audit.quarantine q using (batch_id)"
        " where b.run_id = %s and b.status = 'quarantined' and q.severity in ('error', 'critical')"
        " group by b.run_id, b.batch_id order by 1, 2",
        (ctx.run_id,),
    )
    quarantined = [{"source": s, "object": o, "reason": m, "codes": list(c)} for s, o, m, c in cur.fetchall()]
    validation = {}
    if _table_exists(cur, "audit.validation_runs"):
        cur.execute(
            "select suite, count(*) filter (where success), count(*) filter (where not success)"
            " from audit.validation_runs where run_id = %s group by suite order by suite",
            (ctx.run_id,),
        )
        validation = {suite: {"passed": p, "failed": f} for suite, p, f in cur.fetchall()}
    receipts = {}
    if ctx.mode == "backfill":  # what a backfill can replay: every receipt on or before its date
        cur.execute("select count(*) from audit.batch_receipts where logical_date <= %s", (ctx.logical_date,))
        receipts["receipts_as_of"] = cur.fetchone()[0]
    marts = mart_rows(ctx)
    expected = (
        history_marts()
        if ctx.mode == "backfill"
        else [name for _kind, schema, name in project_relations() if schema == "marts"]
    )
    return {
        "run_id": ctx.run_id,
        "logical_date": ctx.logical_date,
        "sources": sources,
        "quarantined": quarantined,
        "validation": validation,
        "marts": marts,
        "marts_schema": "history" if ctx.mode == "backfill" else "marts",  # a backfill's marts: as of its date
        "missing_marts": sorted(set(expected) - set(marts)),
        **receipts,
        "warehouse": redact(warehouse_url()),
        "docs": docs_locations(),
    }


# What a run publishes for people, in the storage (the local state folder by default): key -> path below the root.
# dbt_docs is dbt's static page: one HTML file with the manifest and catalog inlined, which opens from disk or any
# file share (no web server).
DOCS = {
    "data_docs": (*GX_DOCS, "index.html"),
    "dbt_docs": ("dbt", "target", "static_index.html"),
    "dashboard": ("dashboard", "index.html"),
}
# dbt's artifacts kept with its docs: static_index.html (self-contained) and index.html, the same page served by a
# web server, which fetches manifest.json and catalog.json next to it.
DBT_ARTIFACTS = ("static_index.html", "index.html", "manifest.json", "catalog.json", "run_results.json")


def docs_locations() -> dict[str, str]:
    store = default_storage()
    return {name: store.uri(*key) for name, key in DOCS.items()}


GX_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Great Expectations Data Docs</title></head>
<body><h1>Great Expectations Data Docs</h1>
<p>The latest validation of every batch, one site per source (written by its validate task).</p>
<ul>{% for source in sources %}<li><a href="{{ source }}/index.html">{{ source }}</a></li>{% endfor %}</ul>
{% if not sources %}<p>No source validated yet.</p>{% endif %}
</body></html>
"""


def publish_gx_index() -> str:
    """``docs/gx/index.html``: a link to each source's GX Data Docs site in the storage (the validate tasks build
    them, possibly on other workers); where it is."""
    from jinja2 import Template

    store = default_storage()
    sources = [s for s in load_catalogue().sources if store.exists(*GX_DOCS, s, "index.html")]
    local = gx_docs_dir()
    local.mkdir(parents=True, exist_ok=True)
    (local / "index.html").write_text(Template(GX_INDEX, autoescape=True).render(sources=sources), encoding="utf-8")
    store.publish_dir(local, *GX_DOCS, names=("index.html",))
    return store.uri(*DOCS["data_docs"])


def build_docs(ctx: RunContext, built: bool) -> dict:
    """The index of the GX Data Docs sites; dbt docs (catalog of the warehouse) and the static strategy dashboard,
    written in the local state folder and published to the storage (skipped when this run built nothing and both
    are there)."""
    from ingest.config import dashboard_dir, dbt_target_dir
    from ingest.dashboard.build import build_dashboard
    from ingest.tasks.transform import run_dbt, seed_partial_parse

    if ctx.mode == "backfill":
        return {"skipped": "backfill runs rebuild marts only; docs and dashboard follow the nightly run"}
    store, where = default_storage(), docs_locations()
    publish_gx_index()  # this run's validate tasks may have rebuilt a source's site
    if not built and store.exists(*DOCS["dbt_docs"]) and store.exists(*DOCS["dashboard"]):
        return {"skipped": "no dbt build in this run: docs and dashboard are current", **where}
    seed_partial_parse(dbt_target_dir())  # the run's dbt build parsed the project already
    run_dbt(["docs", "generate", "--static"], ctx)  # also writes static_index.html
    store.publish_dir(dbt_target_dir(), "dbt", "target", names=DBT_ARTIFACTS)
    build_dashboard(warehouse_url(), dashboard_dir())
    store.publish_dir(dashboard_dir(), "dashboard")
    return {"dbt_docs": where["dbt_docs"], "dashboard": where["dashboard"]}


def mart_rows(ctx: RunContext) -> dict[str, int]:
    """Rows per mart, read as BI tools read them (the loader role cannot read marts): the current marts, or for a
    backfill the rows of ``history.<mart>`` as of its date (0 for a date before anything was received)."""
    backfill = ctx.mode == "backfill"
    conn = connect(role=READER)
    marts: dict[str, int] = {}
    with conn, conn.cursor() as cur:
        cur.execute(
            "select table_name from information_schema.tables where table_schema = %s order by table_name",
            ("history" if backfill else "marts",),
        )
        for (table,) in cur.fetchall():
            if backfill:
                cur.execute(
                    sql.SQL("select count(*) from history.{} where logical_date = %s").format(sql.Identifier(table)),
                    (ctx.logical_date,),
                )
            else:
                cur.execute(sql.SQL("select count(*) from marts.{}").format(sql.Identifier(table)))
            marts[table] = cur.fetchone()[0]  # a backfill before anything was received: 0 rows as of its date
    conn.close()
    return marts


def task_report(crumbs: list[dict]) -> dict:
    """Failed tasks, dbt node results and seconds per task from the run's task breadcrumbs."""
    failed = sorted(
        {
            c["task_id"]
            for c in crumbs
            if str(c.get("state")) in ("failed", "upstream_failed") and c["task_id"] != QUARANTINE_TASK
        }
    )
    dbt: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for c in crumbs:
        if c["task_id"].startswith("dbt.") and not c["task_id"].endswith("_watcher_done"):  # dbt nodes only
            state = str(c.get("state"))
            dbt[state] = dbt.get(state, 0) + 1
        seconds[c["task_id"]] = round(seconds.get(c["task_id"], 0.0) + float(c.get("duration") or 0.0), 1)
    return {"failed_tasks": failed, "dbt_nodes": dbt, "task_seconds": seconds}


def publish_history(ctx: RunContext) -> dict[str, int]:
    """After a backfill's build: its marts (in asof_marts) replace their rows as of its date in history.<mart>,
    in one transaction, as the transformer. A column a mart gained is added to its history table (earlier dates
    keep null there); nothing already in history is dropped. Returns rows per mart."""
    rows: dict[str, int] = {}
    conn = connect(role=TRANSFORMER)
    with conn, conn.cursor() as cur:
        for mart in history_marts():
            src, dst = sql.Identifier(f"{ASOF_PREFIX}marts", mart), sql.Identifier(HISTORY_SCHEMA, mart)
            cur.execute(
                "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
                " where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped"
                " order by a.attnum",
                (f"{ASOF_PREFIX}marts.{mart}",),
            )
            columns = cur.fetchall()
            cur.execute(sql.SQL("create table if not exists {} (logical_date date not null)").format(dst))
            cur.execute(
                sql.SQL("create index if not exists {} on {} (logical_date)").format(
                    sql.Identifier(f"{mart}_logical_date"), dst
                )
            )
            for name, type_ in columns:  # type_ is format_type() of the asof column: the catalogue's own text
                cur.execute(
                    sql.SQL("alter table {} add column if not exists {} " + type_).format(dst, sql.Identifier(name))
                )
            names = sql.SQL(", ").join(sql.Identifier(n) for n, _ in columns)
            cur.execute(sql.SQL("delete from {} where logical_date = %s").format(dst), (ctx.logical_date,))
            cur.execute(
                sql.SQL("insert into {} (logical_date, {}) select %s, {} from {}").format(dst, names, names, src),
                (ctx.logical_date,),
            )
            rows[mart] = cur.rowcount
    conn.close()
    return rows


def record_freshness(cur, ctx: RunContext) -> dict:
    """A nightly run's freshness findings (``ingest.status.freshness``) into ``audit.freshness_checks``; the
    summary's part: counts per grade and one line per object that is not ok."""
    from ingest.status import check_freshness
    from ingest.status.freshness import line

    found = check_freshness(cur)
    for f in found:
        cur.execute(
            "insert into audit.freshness_checks (run_id, logical_date, source, object, grade, age, unit, limit_value,"
            " message) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (run_id, source, object) do update"
            " set grade = excluded.grade, age = excluded.age, limit_value = excluded.limit_value,"
            " message = excluded.message, checked_at = now()",
            (
                ctx.run_id,
                ctx.logical_date,
                f["source"],
                f["object"],
                f["grade"],
                f["age"],
                f["unit"],
                f["limit"],
                f["message"],
            ),
        )
    return {
        "checked": len(found),
        "ok": sum(f["grade"] == "ok" for f in found),
        "warn": [line(f) for f in found if f["grade"] == "warn"],
        "stale": [line(f) for f in found if f["grade"] == "stale"],
    }


def publish(ctx: RunContext, crumbs: list[dict] | None = None, alert=None) -> dict:
    """Write the run summary (and a backfill's history); ``alert(text)`` is called once per stale source object
    of a nightly run (freshness, before a failed run raises)."""
    report = task_report(crumbs or [])
    built = report["dbt_nodes"].get("success") and not any(t.startswith("dbt.") for t in report["failed_tasks"])
    if built and ctx.mode == "backfill":  # the marts as of its date, built in asof_marts, into history
        publish_history(ctx)
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        summary = collect(cur, ctx)
        summary.update(report)
        summary["outcome"] = outcome(summary)
        if ctx.mode == "nightly":  # freshness is about now: a backfill replays the past
            cur.execute("savepoint freshness")
            try:
                summary["freshness"] = record_freshness(cur, ctx)
            except Exception as exc:  # noqa: BLE001 - the run summary is written all the same
                cur.execute("rollback to savepoint freshness")
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                log.warning("freshness not checked: %s", first)
                summary["freshness_error"] = storable(first)
        if built:
            remember_build(cur, ctx)
        cur.execute(
            "insert into audit.run_summaries (run_id, dag_id, logical_date, summary) values (%s, %s, %s, %s)"
            " on conflict (run_id) do update set summary = excluded.summary, finished_at = now()",
            (ctx.run_id, DAG_ID, ctx.logical_date, json.dumps(summary)),
        )
    conn.close()
    for stale in (summary.get("freshness") or {}).get("stale", []):
        if alert is not None:
            alert(f"ALERT {DAG_ID} {stale}")
    if summary["outcome"] == "failed":
        raise RunHadProblems(
            f"run {ctx.run_id} failed: {', '.join(summary['failed_tasks']) or 'no failed task'}"
            f"; missing marts: {', '.join(summary['missing_marts']) or 'none'}"
            f"; unreachable: {', '.join(unreachable(summary)) or 'none'}"
            f" ({len(summary['quarantined'])} batch(es) quarantined)"
        )
    return summary


def format_summary(summary: dict) -> str:
    """The short human summary printed at the end of ``make run``."""
    n = len(summary.get("quarantined", []))
    state = {
        "success": "success",
        "failed": "FAILED",
        "completed_with_quarantine": f"completed with {n} quarantined",
    }.get(summary.get("outcome"), "?")
    lines = [f"{DAG_ID} {summary['logical_date']}  (run {summary['run_id']}): {state}"]
    for source, s in sorted(summary["sources"].items()):
        batches = ", ".join(f"{k} {v}" for k, v in sorted(s.get("batches", {}).items())) or "no new batches"
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(s.get("decisions", {}).items()))
        lines.append(
            f"  {source:9} archived {s.get('archived_objects', 0)} objects ({s.get('archived_bytes', 0):,} bytes); "
            f"rows validated {s.get('rows_validated', 0):,}, loaded {s.get('rows_loaded', 0):,}; batches: {batches}"
            + (f"; datasets: {decisions}" if decisions else "")
        )
    if summary.get("dbt_nodes"):
        lines.append("  dbt nodes: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["dbt_nodes"].items())))
    for suite, v in summary.get("validation", {}).items():
        lines.append(f"  validation {suite}: {v['passed']} passed, {v['failed']} failed")
    for q in summary.get("quarantined", []):
        lines.append(f"  QUARANTINED {q['source']} {q['object']}: {q['reason']}")
    fresh = summary.get("freshness")
    if fresh:
        lines.append(
            f"  freshness: {fresh['ok']} of {fresh['checked']} datasets and survey instruments ok,"
            f" {len(fresh['warn'])} warn, {len(fresh['stale'])} stale (`ss4gl status`)"
        )
        lines.extend(f"  {text}" for text in fresh["stale"] + fresh["warn"])
    if summary.get("freshness_error"):
        lines.append(f"  freshness: not checked ({summary['freshness_error']})")
    schema = summary.get("marts_schema", "marts")
    as_of = f" as of {summary['logical_date']}" if schema == "history" else ""
    # A backfill of a date before anything was received (no receipt on or before it, nothing replayed) says so in
    # one line, never with row counts that look real. Summaries written before receipts_as_of was recorded: counts.
    replayed = sum(n for s in summary["sources"].values() for n in s.get("batches", {}).values())
    built = {mart: n for mart, n in summary.get("marts", {}).items() if n}
    if schema == "history" and summary.get("receipts_as_of") == 0 and not replayed:
        lines.append(
            f"  no receipts on or before {summary['logical_date']}: nothing to rebuild; the marts as of that date are"
            + (
                " empty"
                if not built
                else " empty of received data: rows only from the project's reference data ("
                + ", ".join(f"{mart} {n:,}" for mart, n in built.items())
                + ")"
            )
        )
    else:
        for mart, n in summary.get("marts", {}).items():
            lines.append(f"  mart {schema}.{mart}{as_of}: {n:,} rows")
    for mart in summary.get("missing_marts", []):
        lines.append(f"  mart {schema}.{mart}{as_of}: MISSING (the next run rebuilds it; `--rebuild` now)")
    lines.append(f"  warehouse: {summary['warehouse']}   (ss4gl warehouse psql)")
    for name, path in summary.get("docs", {}).items():
        lines.append(f"  {name.replace('_', ' ')}: {path}")
    return "\n".join(lines)
