"""Freshness rules (config as data: ``catalogue.yml``, ``sources.<source>.freshness``) and the findings that
``ss4gl status`` reports and every nightly run records (``audit.freshness_checks``), summarises and alerts on.

* Eurostat, per dataset, two checks; the worse one grades it:
  - our checking: hours since the last successful check, the later of a table-of-contents check that found it
    unchanged and a receipt (a download): over ``warn_after_hours`` warns, over ``error_after_hours`` (or never
    checked) is stale;
  - Eurostat's update stamp: the table of contents' ``last update`` at the latest check against the stamp of the
    version the warehouse holds (``audit.source_state``). A newer version that is not loaded (quarantined, or its
    load failed) is behind: a warning, stale once Eurostat's update is older than ``error_after_hours``.
* Surveys, per cluster and instrument (one wave a year): days since the latest loaded file was received, over
  ``max_age_days`` (one number, or one per instrument) or never loaded is stale.

Grades: ``ok``, ``warn`` (reported), ``stale`` (alerted; ``ss4gl status`` exits 4).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from ingest.config import Catalogue

# Defaults of catalogue.yml sources.<source>.freshness (each key there overrides its default).
EUROSTAT_FRESHNESS = {"warn_after_hours": 30, "error_after_hours": 54}
SURVEY_MAX_AGE_DAYS = 400  # yearly waves: ~13 months
GRADES = ("ok", "warn", "stale")  # worst last


def eurostat_freshness(catalogue: Catalogue) -> dict[str, float]:
    cfg = (catalogue.sources.get("eurostat") or {}).get("freshness") or {}
    out = {k: float(cfg.get(k, v)) for k, v in EUROSTAT_FRESHNESS.items()}
    if out["warn_after_hours"] > out["error_after_hours"]:
        out["warn_after_hours"] = out["error_after_hours"]
    return out


def survey_max_age_days(catalogue: Catalogue, instrument: str) -> int:
    """``sources.surveys.freshness.max_age_days``: one number for every instrument, or one per instrument."""
    value = ((catalogue.sources.get("surveys") or {}).get("freshness") or {}).get("max_age_days", SURVEY_MAX_AGE_DAYS)
    if isinstance(value, dict):
        value = value.get(instrument, SURVEY_MAX_AGE_DAYS)
    return int(value)


def grade_eurostat(last_ok: datetime | None, now: datetime, cfg: dict[str, float]) -> tuple[str, float | None]:
    """(``ok`` | ``warn`` | ``stale`` | ``never``, age in hours)."""
    if last_ok is None:
        return "never", None
    age = (now - last_ok).total_seconds() / 3600
    if age > cfg["error_after_hours"]:
        return "stale", age
    return ("warn" if age > cfg["warn_after_hours"] else "ok"), age


def grade_survey(last_loaded: datetime | None, now: datetime, max_age_days: int) -> tuple[str, float | None]:
    """(``ok`` | ``stale`` | ``never``, age in days)."""
    if last_loaded is None:
        return "never", None
    age = (now - last_loaded).total_seconds() / 86400
    return ("stale" if age > max_age_days else "ok"), age


def _day(value: str | date | None) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def behind(latest: str | date | None, loaded: str | date | None, now: datetime, cfg: dict[str, float]) -> tuple:
    """Eurostat's update stamp vs the loaded version's: (grade, message) with grade ``ok`` when the warehouse holds
    Eurostat's latest version (or no stamp was ever seen)."""
    latest, loaded = _day(latest), _day(loaded)
    if latest is None or (loaded is not None and loaded >= latest):
        return "ok", ""
    hours = (now - datetime(latest.year, latest.month, latest.day, tzinfo=UTC)).total_seconds() / 3600
    grade = "stale" if hours > cfg["error_after_hours"] else "warn"
    holds = f"the version of {loaded}" if loaded else "no version"
    return grade, f"Eurostat updated it on {latest}; the warehouse holds {holds}"


def findings(eurostat: list[dict], surveys: list[dict], now: datetime, cfg: dict[str, float]) -> list[dict]:
    """One finding per Eurostat dataset and per cluster and instrument, from the rows ``ss4gl status`` reads:
    ``{source, object, grade, age, unit, limit, message, never}``; the message names no file, row or value."""
    out = []
    for d in eurostat:
        grade, messages = d["freshness"], []
        if grade == "never":
            grade, messages = "stale", ["never checked successfully"]
        elif grade in ("warn", "stale"):
            limit = cfg["error_after_hours"] if grade == "stale" else cfg["warn_after_hours"]
            messages.append(f"last successful check {d['age_hours']:.0f} h ago (over {limit:g} h)")
        stamp_grade, stamp_message = behind(d.get("latest_toc_last_update"), d.get("loaded_toc_last_update"), now, cfg)
        if stamp_message:
            messages.append(stamp_message)
            grade = max(grade, stamp_grade, key=GRADES.index)
        out.append(
            {
                "source": "eurostat",
                "object": d["dataset"],
                "grade": grade,
                "age": d["age_hours"],
                "unit": "h",
                "limit": cfg["error_after_hours"],
                "message": "; ".join(messages),
                "never": d["freshness"] == "never",
            }
        )
    for s in surveys:
        grade, message = s["freshness"], ""
        if grade == "never":
            grade, message = "stale", "no file loaded yet"
        elif grade == "stale":
            message = f"latest loaded file received {s['age_days']:.0f} days ago (over {s['max_age_days']} days)"
        out.append(
            {
                "source": "surveys",
                "object": f"{s['cluster']}/{s['instrument']}",
                "grade": grade,
                "age": s["age_days"],
                "unit": "d",
                "limit": float(s["max_age_days"]),
                "message": message,
                "never": s["freshness"] == "never",
            }
        )
    return out


def line(finding: dict) -> str:
    """``STALE eurostat nama_10r_2gdp: never checked successfully`` (the alert's and the summary's text)."""
    return f"{finding['grade'].upper()} {finding['source']} {finding['object']}: {finding['message']}"
