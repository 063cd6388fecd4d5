"""Personal data handling: keyed pseudonyms for respondent ids, scrubbing of free text, masking of echoes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib.util
import numbers
import os
import re

KEY_ENV = "SS4GL_PSEUDONYM_KEY"
KEY_AIRFLOW_VARIABLE = "ss4gl_pseudonym_key"
PSEUDONYM_LENGTH = 32

_AT = r"\s*[(\[{<]\s*(?:at|@)\s*[)\]}>]\s*"  # jan(at)x.com, jan [at] x [dot] com
_DOT = r"(?:\.|\s*[(\[{<]\s*(?:dot|punto|punt|point|pont)\s*[)\]}>]\s*)"
# user@host.tld, user@localhost (no dot), and the obfuscated forms (which need a dot: "us (at) the fair" stays).
EMAIL_RE = re.compile(rf"[\w.+'-]+(?:(?:{_AT}|@)[\w-]+(?:{_DOT}[\w-]+)+|@[\w-]+)", re.UNICODE | re.IGNORECASE)
# International (+31 6 1234 5678, 0034 93 123 45 67, +1 (555) 123-4567), national with a leading 0
# (06-12345678, (020) 123 4567), a parenthesised area code ((555) 123-4567), or national without a leading 0
# in spaced groups (612 345 678, 91 123 45 67: group "spaced", checked by _phone so amounts stay).
PHONE_RE = re.compile(
    r"(?<![\w.])(?:"
    r"(?:\+|00)\d{1,3}[\s./-]?(?:\(0\)\s?)?(?:\(\d{1,4}\)|\d{1,4})(?:[\s./-]?\d{2,4}){2,5}"
    r"|0\d{1,4}(?:[\s./-]?\d{2,4}){2,5}"
    r"|\(0?\d{1,4}\)\s?\d{2,4}(?:[\s./-]?\d{2,4}){1,4}"
    r"|(?<!\d[ -])(?P<spaced>[1-9]\d{1,2}(?:[ -]\d{2,4}){2,4})"
    r")(?![\w])"
)
# An amount or share written next to the digits: "612 345 678 EUR", "€ 100 200 300" are not phone numbers.
_UNIT_AFTER = re.compile(r"\s?(?:%|€|\$|£|(?:eur|euros?|usd|gbp|chf|huf|ft|m|k|mio|bn|ths)\b)", re.IGNORECASE)
_UNIT_BEFORE = re.compile(r"(?:€|\$|£|\b(?:eur|usd|gbp|chf|huf))\s?$", re.IGNORECASE)
# Echo-safe values: a plain number ("7", "-1", "3000000000", "12,5", "35%") or an ISO date (and time).
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)(?:[eE][+-]?\d+)?%?")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")


class PseudonymKeyMissing(RuntimeError):
    """No pseudonymisation key is configured."""

    def __init__(self) -> None:
        super().__init__(
            f"pseudonym key missing: set environment variable {KEY_ENV} "
            f"(or Airflow Variable {KEY_AIRFLOW_VARIABLE}) to a secret of at least 16 characters"
        )


def pseudonymise(value: str, key: bytes) -> str:
    """Keyed HMAC-SHA256 pseudonym of ``value`` (hex, first 32 characters); stable per key."""
    if not key:
        raise PseudonymKeyMissing()
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]


def _airflow_configured() -> bool:
    return bool(os.environ.get("AIRFLOW_HOME") or any(k.startswith("AIRFLOW__") for k in os.environ))


def _key_from_airflow() -> str | None:
    """Airflow Variable, imported lazily; any failure (not installed, no metadata DB) means 'not set'."""
    if not _airflow_configured() or importlib.util.find_spec("airflow") is None:
        return None
    try:
        try:
            from airflow.sdk import Variable  # Airflow 3
        except ImportError:  # pragma: no cover - Airflow 2
            from airflow.models import Variable  # type: ignore[no-redef]
        value = Variable.get(KEY_AIRFLOW_VARIABLE, default=None)
    except Exception:  # noqa: BLE001 - fail softly, the caller raises a clear error
        return None
    return str(value) if value else None


def load_key() -> bytes:
    """The key from ``SS4GL_PSEUDONYM_KEY`` or the Airflow Variable; else ``PseudonymKeyMissing``."""
    value = os.environ.get(KEY_ENV) or _key_from_airflow()
    if not value or len(value) < 16:
        raise PseudonymKeyMissing()
    return value.encode("utf-8")


def key_id(key: bytes) -> str:
    """A short public id of a pseudonymisation key (recorded with each batch): which key made its pseudonyms.
    A keyed hash of a constant, so it tells keys apart without revealing anything about them."""
    return hmac.new(key, b"ss4gl key id", hashlib.sha256).hexdigest()[:12]


def ephemeral_key() -> bytes:
    """A random key for dry runs (duplicate detection only; pseudonyms are never stored)."""
    return os.urandom(32)


def _phone(m: re.Match[str]) -> str:
    if m.group("spaced") is not None:
        groups = re.split(r"[ -]", m.group(0))
        digits = sum(len(g) for g in groups)
        before, after = m.string[max(0, m.start() - 6) : m.start()], m.string[m.end() : m.end() + 6]
        if (
            not 9 <= digits <= 12
            or max(len(g) for g in groups) < 3  # "10 20 30 40 50": a list of small numbers
            or _UNIT_AFTER.match(after)
            or _UNIT_BEFORE.search(before)
        ):
            return m.group(0)
    return "[phone]"


def scrub(text: str) -> str:
    """Replace e-mail addresses (also "jan(at)x.com", "jan@localhost") and phone numbers with ``[email]`` /
    ``[phone]``; years, amounts and percentages stay."""
    return PHONE_RE.sub(_phone, EMAIL_RE.sub("[email]", text))


class Known(str):
    """A ``found`` value the caller vouches for, echoed (scrubbed) in problem messages: a code from the contract
    or codebook lists, a folder name chosen by an operator, or a description the parser wrote itself
    ("absent", "byte 0x93", a delimiter). Never wrap a cell value of a free-text, name, contact or id field."""

    __slots__ = ()


def known(value: object) -> Known:
    """Mark ``value`` as safe to echo (see ``Known``)."""
    return Known(value)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: object) -> str:
    """The shape of a value, never its letters: 'text of 24 characters (contains an e-mail address)'."""
    text = " ".join(str(value).split())
    n = len(text)
    out = f"text of {n} character{'s' if n != 1 else ''}"
    kinds = []
    if EMAIL_RE.search(text):
        kinds.append("an e-mail address")
    if PHONE_RE.sub(_phone, EMAIL_RE.sub(" ", text)) != EMAIL_RE.sub(" ", text):
        kinds.append("a phone number")
    return out + (f" (contains {' and '.join(kinds)})" if kinds else "")


def echo(value: object, limit: int = 60) -> tuple[str | None, bool]:
    """``(text, echoed)``: the value itself when safe to show (a number, a boolean, a date, a ``Known`` value;
    scrubbed, one line, truncated), else its shape (``describe``) and ``echoed`` False."""
    if value is None:
        return None, True
    if isinstance(value, Known):
        return _one_line(scrub(str(value)), limit), True
    if isinstance(value, bool):
        return str(value), True
    if isinstance(value, numbers.Number):
        return _one_line(str(value), limit), True
    if isinstance(value, dt.date | dt.time):
        return value.isoformat(), True
    text = str(value).strip()
    if not text:
        return "", True
    if (NUMBER_RE.fullmatch(text) and scrub(text) == text) or DATE_RE.fullmatch(text):
        return _one_line(text, limit), True
    return describe(value), False


def mask(value: object, limit: int = 60) -> str | None:
    """A ``found`` value safe to echo in a problem message (see ``echo``): numbers, booleans, dates and
    ``Known`` values as they are (scrubbed, one line, truncated), anything else described by its shape only."""
    return echo(value, limit)[0]
