"""Value parsing: one cell -> its canonical value by the field's type (None when missing or invalid: an invalid
cell adds an error), codes checked against the cluster's code lists."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from ingest.surveys.parsing.raw import is_blank
from ingest.surveys.parsing.state import ParseState
from ingest.surveys.privacy import known
from ingest.surveys.spec import (
    DECIMAL_LIMIT,
    INTEGER_RANGE,
    LIKERT_MAX,
    LIKERT_MIN,
    TEXT_MAX_CHARS,
    FieldSpec,
    norm,
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
UNKNOWN_CODE_PROBLEM = {
    "services": "unknown_service",
    "nuts3": "unknown_nuts3",
    "nace": "unknown_nace",
    "clusters": "unknown_cluster",
}


def is_missing(value: Any, state: ParseState) -> bool:
    """Blank, or one of the codebook's missing-answer labels (such as "don't know")."""
    return is_blank(value) or (isinstance(value, str) and norm(value) in state.cb.missing_labels)


def as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    s = str(value).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("€", "")
    s = s.rstrip("%")
    if "," in s and "." in s:
        s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else s.replace(",", "")
    elif s.count(",") == 1:
        s = s.replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        return None
    return float(s)


def convert(value: Any, f: FieldSpec, state: ParseState, row: int, column: str) -> Any:
    """One cell -> canonical value (None when missing or invalid; invalid cells add an error)."""
    if is_missing(value, state):
        return None
    pr = state.pr
    t = f.type
    if t in ("string", "text"):
        return _fits_text(as_text(value), f, state, row, column)
    if t == "boolean":
        if isinstance(value, bool):
            return value
        got = state.labels("boolean").get(norm(value))
        if got is None:
            got = {
                "true": True,
                "false": False,
                "yes": True,
                "no": False,
                "y": True,
                "n": False,
                "1": True,
                "0": False,
            }.get(norm(as_text(value)))
        if got is None:
            pr.error(
                "invalid_value",
                f"not a yes/no answer for {f.name}",
                row=row,
                column=column,
                expected=" / ".join(state.cb.labels.get("boolean", {})) or "yes/no",
                found=value,
            )
        return got
    if t == "likert":
        for kind in (f"likert_{f.name}", "likert"):
            got = state.labels(kind).get(norm(value))
            if got is not None:
                return int(got)
        num = _number(value)
        if num is None or not num.is_integer():
            labels = list(state.cb.labels.get(f"likert_{f.name}", {})) or list(state.cb.labels.get("likert", {}))
            pr.error(
                "invalid_value",
                f"unknown answer label for {f.name}",
                row=row,
                column=column,
                expected=f"{LIKERT_MIN}-{LIKERT_MAX} or one of {labels[:5]}",
                found=value,
            )
            return None
        if not LIKERT_MIN <= num <= LIKERT_MAX:
            pr.error(
                "likert_out_of_range",
                f"{f.name} outside the {LIKERT_MIN}-{LIKERT_MAX} scale "
                '("not used / don\'t know" must be empty, never 0)',
                row=row,
                column=column,
                expected=f"{LIKERT_MIN}-{LIKERT_MAX} or empty",
                found=value,
            )
            return None
        return int(num)
    if t in ("integer", "decimal"):
        num = _number(value)
        if num is None or (t == "integer" and not num.is_integer()):
            pr.error(
                "invalid_value",
                f"{f.name} is not {'an integer' if t == 'integer' else 'a number'}",
                row=row,
                column=column,
                expected=t,
                found=value,
            )
            return None
        if (f.min is not None and num < f.min) or (f.max is not None and num > f.max):
            pr.error(
                "value_out_of_range",
                f"{f.name} out of range",
                row=row,
                column=column,
                expected=f"{f.min if f.min is not None else '-inf'}..{f.max if f.max is not None else 'inf'}",
                found=value,
            )
            return None
        low, high = INTEGER_RANGE if t == "integer" else (-DECIMAL_LIMIT, DECIMAL_LIMIT)
        if not (math.isfinite(num) and low <= num <= high):
            pr.error(
                "value_out_of_range",
                f"{f.name} is beyond what the warehouse column holds ({'integer' if t == 'integer' else 'numeric'})",
                row=row,
                column=column,
                expected=f"{low:.0f}..{high:.0f}",
                found=value,
            )
            return None
        return int(num) if t == "integer" else num
    if t == "date":
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        m = re.match(r"^\s*(\d{4}-\d{2}-\d{2})", str(value))
        if m and not _valid_date(m[1]):
            m = None
        if not m:
            pr.error(
                "invalid_value",
                f"{f.name} is not a date",
                row=row,
                column=column,
                expected="YYYY-MM-DD",
                found=value,
            )
            return None
        return m[1]
    if t == "code":
        return _code(value, f, state, row, column)
    raise ValueError(f"field {f.name}: type {t} needs a list cell")  # multi_code is handled by multi_codes


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _fits_text(text: str, f: FieldSpec, state: ParseState, row: int, column: str) -> str | None:
    """Text the warehouse accepts: no NUL / control characters / lone surrogates, at most TEXT_MAX_CHARS."""
    bad = _CONTROL.search(text)
    if bad:
        state.pr.error(
            "invalid_character",
            f"{f.name} holds a control character (U+{ord(bad.group()):04X})",
            row=row,
            column=column,
            expected="printable text (tab and line breaks allowed)",
            found=known(f"U+{ord(bad.group()):04X} at character {bad.start() + 1}"),
        )
        return None
    limit = TEXT_MAX_CHARS[f.type]
    if len(text) > limit:
        state.pr.error(
            "text_too_long",
            f"{f.name} is longer than {limit} characters",
            row=row,
            column=column,
            expected=f"<= {limit} characters",
            found=known(f"{len(text)} characters"),
        )
        return None
    return text


def _valid_date(iso: str) -> bool:
    try:
        dt.date.fromisoformat(iso)
    except ValueError:
        return False
    return True


def _code(value: Any, f: FieldSpec, state: ParseState, row: int, column: str) -> str | None:
    """A code of the field's code lists (an answer label mapped to its code first), else an unknown-code error."""
    lists = f.codes
    token = as_text(value).strip()
    for lst in lists:
        got = state.labels(lst).get(norm(token))
        if got is not None:
            token = str(got)
            break
    for lst in lists:
        allowed = state.allowed(lst)
        cand = token
        if lst == "nuts3":
            m = re.match(r"^([A-Za-z]{2}[0-9A-Za-z]{1,3})\b", token)
            cand = m[1].upper() if m else token
        elif lst == "nace":
            if isinstance(value, float):
                token = f"{value:.2f}"
            m = re.match(r"^(\d{2})\.?(\d{1,2})(?!\d)", token)
            cand = f"{m[1]}.{m[2].ljust(2, '0')}" if m else token
        else:
            cand = state.allowed_by_norm(lst).get(norm(cand), cand)
        if cand in allowed:
            return cand
    lst = lists[0] if len(lists) == 1 else "codes"
    code = UNKNOWN_CODE_PROBLEM.get(lst, "unknown_code")
    if lst == "nuts3":
        regions = ", ".join(state.catalogue.cluster(state.cluster).regions)
        expected = f"a NUTS-3 code in {regions} (reference/nuts3.csv)"
    elif lst == "nace":
        expected = "a NACE Rev.2 4-digit code like 93.11 (reference/nace_rev2.csv)"
    else:
        labels = sorted(state.cb.label_map(lst)) if len(lists) == 1 else []
        expected = f"a code of {'/'.join(lists)}" + (f" or a label like {labels[:3]}" if labels else "")
    state.pr.error(
        code,
        f"unknown {'/'.join(lists)} code in {f.name}",
        row=row,
        column=column,
        expected=expected,
        found=value,
    )
    return None


def multi_codes(value: Any, f: FieldSpec, state: ParseState, row: int, column: str, sep: str) -> list[str] | None:
    """A multiple-choice cell (codes separated by ``sep``, or by whitespace when ``sep`` is blank) -> its known
    codes, each once, in order (None when missing)."""
    if is_missing(value, state):
        return None
    text = as_text(value)
    parts = text.split() if sep.strip() == "" else [p for p in text.split(sep)]
    out: list[str] = []
    for part in parts:
        if not part.strip():
            continue
        code = _code(part.strip(), f, state, row, column)
        if code is not None and code not in out:
            out.append(code)
    return out


def option_flag(value: Any, state: ParseState, row: int, column: str) -> bool:
    """A multiple-choice option column (LimeSurvey Y / empty)."""
    if is_blank(value):
        return False
    got = convert(value, FieldSpec("option", "boolean"), state, row, column)
    return bool(got)


def is_formula_like(value: Any) -> bool:
    """Text a spreadsheet would read as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)
