"""Numbers, units, dates and file names as the dashboard shows them (plain text: the templates escape it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from typing import Any

PCT_SUFFIX = {"PC_GDP": " of GDP", "PC_EMP": " of employment", "PC_ENT": " of enterprises"}

UNIT_LABELS = {
    "PC": "%",
    "PC_GDP": "% of GDP",
    "PC_EMP": "% of employment",
    "PC_ENT": "% of enterprises",
    "MIO_EUR": "EUR million",
    "EUR_HAB": "EUR per inhabitant",
    "PPS_EU27_2020_HAB": "PPS per inhabitant",
    "PERSONS": "persons",
    "NR": "number",
    "THS_T": "thousand tonnes",
    "SCORE": "score",
    "EUR": "EUR",
}


def num(value: Any) -> float | None:
    """A finite float, or None (None, booleans, text, NaN and infinities)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def text(value: Any) -> str:
    """``str(value)``, None -> empty."""
    return "" if value is None else str(value)


def fmt_number(value: float, decimals: int | None = None) -> str:
    if decimals is None:
        a = abs(value)
        decimals = 0 if a >= 1000 or value == int(value) else (1 if a >= 10 else 2)
    return f"{value:,.{decimals}f}"


def fmt_money(value: float) -> str:
    a = abs(value)
    if a >= 1e9:
        return f"EUR {value / 1e9:,.2f} bn"
    if a >= 1e6:
        return f"EUR {value / 1e6:,.1f} M"
    return f"EUR {value:,.0f}"


def fmt_unit(value: Any, unit: str | None) -> str:
    """A value formatted for its unit code (indicators seed units, plus EUR / persons / share / score)."""
    v = num(value)
    if v is None:
        return "–"
    u = (unit or "").strip()
    up = u.upper()
    if up == "SHARE":  # a 0-1 ratio
        return f"{v * 100:,.1f} %"
    if up == "PC" or up.startswith("PC_"):
        return f"{v:,.1f} %{PCT_SUFFIX.get(up, '')}"
    if up in ("EUR",):
        return fmt_money(v)
    if up == "MIO_EUR":
        return f"EUR {v:,.0f} M" if abs(v) >= 100 else f"EUR {v:,.1f} M"
    if up == "EUR_HAB":
        return f"EUR {v:,.0f} per inhabitant"
    if up.startswith("PPS") and up.endswith("_HAB"):
        return f"{v:,.0f} PPS per inhabitant"
    if up == "PERSONS":
        return f"{v:,.0f} persons"
    if up in ("NR", "COUNT"):
        return fmt_number(v, 0 if v == int(v) else 1)
    if up == "THS_T":
        return f"{v:,.0f} thousand t"
    if up == "SCORE":
        return f"{v:,.2f}"
    if up == "FTE":
        return f"{v:,.1f} FTE"
    return f"{fmt_number(v)} {u}".strip()


def fmt_share(value: Any) -> str:
    return fmt_unit(value, "SHARE")


def fmt_index(value: Any) -> str:
    v = num(value)
    return "–" if v is None else f"{v:,.1f}"


def fmt_pct(value: Any) -> str:
    """A 0-1 ratio as a whole percentage (progress, time elapsed)."""
    v = num(value)
    return "–" if v is None else f"{v * 100:,.0f} %"


def fmt_ts(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def unit_label(unit: str | None) -> str:
    """Axis title for a unit code."""
    return UNIT_LABELS.get((unit or "").upper(), unit or "")


def page_name(cluster_id: str) -> str:
    """File name of a cluster page; ids that are not plain slugs get a hash so names stay safe and unique."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,80}", cluster_id):
        return f"cluster-{cluster_id}.html"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", cluster_id)[:40].strip("_") or "cluster"
    return f"cluster-{slug}-{hashlib.sha256(cluster_id.encode()).hexdigest()[:8]}.html"
