"""``ss4gl status`` as text: aligned sections for people (``ingest.status.collect`` gives the facts)."""

from __future__ import annotations

from datetime import UTC, datetime


def _when(value: str | None) -> str:
    """``YYYY-MM-DD HH:MM`` (UTC) of an ISO timestamp; ``-`` when there is none."""
    if not value:
        return "-"
    if len(value) <= 10:
        return value
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def _num(value) -> str:
    return "-" if value is None else f"{value:,}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    return ["  " + "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def format_status(doc: dict) -> str:
    warnings = sum(p.startswith("WARN") for p in doc["problems"])
    lines = [
        f"ss4gl status at {_when(doc['now'])} UTC: {doc['health'].upper().replace('_', ' ')}"
        + (f", {warnings} warning(s)" if warnings else "")
        + f" (exit {doc['exit_status']})",
        f"  warehouse: {doc['warehouse']}",
        f"  storage:   {doc['storage']}",
        "",
        "Last runs (newest first; duration from the first audit record of a run to its summary)",
    ]
    if doc["runs"]:
        lines += _table(
            ["run id", "logical date", "mode", "outcome", "duration", "finished (UTC)"],
            [
                [
                    r["run_id"],
                    r["logical_date"] or "-",
                    r["mode"],
                    r["outcome"] + (f" ({r['quarantined']} quarantined)" if r["quarantined"] else ""),
                    _duration(r["duration_seconds"]),
                    _when(r["finished_at"])
                    if r["finished_at"]
                    else f"- (last activity {_when(r.get('last_activity_at'))})",
                ]
                for r in doc["runs"]
            ],
        )
    else:
        lines.append("  no run recorded yet")
    cfg = doc["freshness"]["eurostat"]
    lines += [
        "",
        f"Eurostat datasets (ok: a successful check within {cfg['warn_after_hours']:g} h, then warn; stale after"
        f" {cfg['error_after_hours']:g} h)",
    ]
    lines += _table(
        [
            "dataset",
            "checked (UTC)",
            "decision",
            "received (logical date)",
            "last batch",
            "rows",
            "loaded",
            "TOC update",
            "Eurostat updated",
            "freshness",
        ],
        [
            [
                d["dataset"],
                _when((d["last_check"] or {}).get("at")),
                (d["last_check"] or {}).get("decision") or "-",
                f"{_when(d['last_receipt']['at'])} ({d['last_receipt']['logical_date']})" if d["last_receipt"] else "-",
                (d["last_batch"] or {}).get("status") or "-",
                _num((d["last_load"] or {}).get("rows_loaded")),
                _when((d["last_load"] or {}).get("at"))[:10],
                d["toc_last_update"] or "-",
                _when(d["source_updated_at"])[:10],
                d["freshness"] + (f" ({d['age_hours']:.0f} h)" if d["age_hours"] is not None else ""),
            ]
            for d in doc["eurostat"]
        ],
    )
    lines += ["", "Surveys per cluster and instrument (stale: the latest loaded file received over N days ago)"]
    lines += _table(
        [
            "cluster",
            "instrument",
            "files",
            "quarantined",
            "last received (logical date)",
            "last loaded",
            "wave",
            "rows",
            "max age",
            "freshness",
        ],
        [
            [
                s["cluster"],
                s["instrument"],
                str(s["files"]),
                str(s["quarantined"]),
                f"{_when(s['last_receipt']['at'])} ({s['last_receipt']['logical_date']}, {s['last_receipt']['status']})"
                if s["last_receipt"]
                else "-",
                _when((s["last_load"] or {}).get("loaded_at")),
                str((s["last_load"] or {}).get("wave") or "-"),
                _num((s["last_load"] or {}).get("rows_loaded")),
                f"{s['max_age_days']} d",
                s["freshness"] + (f" ({s['age_days']:.0f} d)" if s["age_days"] is not None else ""),
            ]
            for s in doc["surveys"]
        ],
    )
    lines += ["", "Open quarantines (reasons: `ss4gl quarantine list`; release: `ss4gl quarantine release`)"]
    if doc["quarantines"]:
        lines += _table(
            ["batch", "codes", "since"],
            [[q["batch_id"], ", ".join(q["codes"]) or "-", q["logical_date"] or "-"] for q in doc["quarantines"]],
        )
    else:
        lines.append("  none")
    m = doc["marts"]
    lines += [
        "",
        "Marts (built: the last successful dbt build, audit.source_state; one build builds every mart)",
        f"  current marts built: {_when(m['built_at'])}{' UTC' if m['built_at'] else ' (never)'}"
        + (f"; rows as counted by run {m['rows_counted_in_run']}" if m["rows_counted_in_run"] else ""),
    ]
    if m["marts"]:
        lines += _table(
            ["mart", "rows", "in warehouse"],
            [[f"marts.{x['name']}", _num(x["rows"]), "yes" if x["present"] else "MISSING"] for x in m["marts"]],
        )
    h = m["history"]
    if h["dates"]:
        lines.append(
            f"  history (backfills): {h['dates']} logical date(s) {h['first']} .. {h['last']},"
            f" last built {_when(h['last_built_at'])} UTC"
        )
    lines += ["", "Problems" if doc["problems"] else "Problems: none"]
    lines += [f"  {p}" for p in doc["problems"]]
    return "\n".join(lines)
