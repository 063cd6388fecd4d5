"""Personal data handling: keyed pseudonyms for respondent ids, scrubbing of free text, masking of echoes."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import re

KEY_ENV = "SS4GL_PSEUDONYM_KEY"
KEY_AIRFLOW_VARIABLE = "ss4gl_pseudonym_key"
PSEUDONYM_LENGTH = 32

EMAIL_RE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# International (+31 6 1234 5678, 0034 93 123 45 67) or national with a leading 0 (06-12345678).
PHONE_RE = re.compile(
    r"(?<![\w.])(?:(?:\+|00)\d{1,3}[\s./-]?(?:\(0\)[\s]?)?\d{1,4}|0\d{1,4})(?:[\s./-]?\d{2,4}){2,5}(?![\w])"
)


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


def ephemeral_key() -> bytes:
    """A random key for dry runs (duplicate detection only; pseudonyms are never stored)."""
    return os.urandom(32)


def scrub(text: str) -> str:
    """Replace e-mail addresses and phone numbers in free text with ``[email]`` / ``[phone]``."""
    return PHONE_RE.sub("[phone]", EMAIL_RE.sub("[email]", text))


def mask(value: object, limit: int = 60) -> str | None:
    """A value safe to echo in a problem message: scrubbed, one line, truncated."""
    if value is None:
        return None
    text = " ".join(scrub(str(value)).split())
    words = text.split(" ")
    if len(words) > 1 and sum(w[:1].isalpha() for w in words) >= 2:
        # Several words (a typed-in person name looks like this): echo the shape only, never the words.
        return " ".join(w[0] + "*" * (len(w) - 1) for w in words)[:limit] + f" ({len(text)} characters)"
    return text if len(text) <= limit else text[: limit - 1] + "…"
