"""Exact numbers and the rules for comparing them with what a mart published.

Recomputed values are exact: ``Fraction`` for everything rational (sums, means, ratios, shares), ``Decimal`` at
``DIGITS`` significant digits for the few irrational ones (square roots of the cosine similarities and z-scores,
the fractional power of the CAGR) -- 60 digits, far beyond anything a mart publishes.

How a published value is compared (``matches``):

* ``Round(n)``: the column is documented as rounded to n decimals at the mart ("round once, from the exact
  value"): the published value must equal the exact value rounded half away from zero to n decimals (Postgres'
  ``round(numeric, n)``), digit for digit.
* ``FULL``: the column is documented as full ``numeric`` precision. A terminating exact value (1.5, 0.25) must be
  published as exactly that. A non-terminating one (2/3) cannot be written out: Postgres keeps at least 16
  significant digits in every numeric quotient, so the published value must agree with the exact value to
  within 10^-15 (relative to its magnitude when above 1). A value rounded anywhere in its chain (to 6 or 10
  decimals, say) is off by far more than that and fails.
* ``SAME``: integers, booleans, text: equality.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

DIGITS = 60
_CONTEXT = decimal.Context(prec=DIGITS, rounding=decimal.ROUND_HALF_EVEN)
FULL_PRECISION_TOLERANCE = Fraction(1, 10**15)
TERMINATING_SCALE_LIMIT = 20  # Postgres writes a terminating quotient with up to 20 decimals in full


@dataclass(frozen=True)
class Round:
    places: int


FULL = "full"
SAME = "same"


def frac(value) -> Fraction | None:
    """A value from the warehouse or a seed (Decimal, int, str) as an exact Fraction; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not exact: read the value as Decimal or str")
    return Fraction(Decimal(value) if isinstance(value, str) else value)


def sqrt(value: Fraction) -> Decimal:
    """Square root at DIGITS significant digits."""
    return _CONTEXT.sqrt(_to_decimal(value))


def power(base: Fraction, exponent: Fraction) -> Decimal:
    """base ** exponent (base > 0) at DIGITS significant digits."""
    return _CONTEXT.power(_to_decimal(base), _to_decimal(exponent))


def div(numerator, denominator):
    """Exact quotient; None when either side is None or the denominator is 0 (safe_divide)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if isinstance(numerator, Decimal) or isinstance(denominator, Decimal):
        return _CONTEXT.divide(_to_decimal(numerator), _to_decimal(denominator))
    return Fraction(numerator) / Fraction(denominator)


def mean(values) -> Fraction | None:
    """Mean of the non-null values (SQL avg): None when there is none."""
    present = [Fraction(v) for v in values if v is not None]
    return sum(present, Fraction(0)) / len(present) if present else None


def round_half_away(value, places: int) -> Decimal:
    """value rounded half away from zero to `places` decimals, like Postgres' round(numeric, places)."""
    scaled = Fraction(value) * 10**places
    sign = -1 if scaled < 0 else 1
    magnitude = abs(scaled)
    integer = magnitude.numerator // magnitude.denominator
    if magnitude - integer >= Fraction(1, 2):
        integer += 1
    return Decimal(sign * integer).scaleb(-places)


def _to_decimal(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    value = Fraction(value)
    return _CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))


def _terminating_decimal(value: Fraction) -> Decimal | None:
    """The exact decimal expansion of value when it terminates within TERMINATING_SCALE_LIMIT decimals."""
    scaled = value * 10**TERMINATING_SCALE_LIMIT
    if scaled.denominator != 1:
        return None
    return Decimal(scaled.numerator).scaleb(-TERMINATING_SCALE_LIMIT)


def expected_text(value, rule) -> str:
    """How the recomputed value reads in a mismatch line (the value the published one should equal)."""
    if value is None:
        return "NULL"
    if isinstance(rule, Round):
        return _plain(round_half_away(value, rule.places))
    if rule == FULL and isinstance(value, Fraction | Decimal):
        exact = _terminating_decimal(Fraction(value)) if isinstance(value, Fraction) else None
        if exact is not None:
            return _plain(exact)
        return f"{_plain(_to_decimal(value).quantize(Decimal(1).scaleb(-24), context=_CONTEXT))}…"
    if isinstance(value, Fraction):
        return _plain(_to_decimal(value))
    return str(value)


def published_text(value) -> str:
    if value is None:
        return "NULL"
    return _plain(value) if isinstance(value, Decimal) else str(value)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != 0 else "0"


def matches(published, recomputed, rule) -> bool:
    """Whether the published value is the recomputed one under `rule` (see the module docstring)."""
    if published is None or recomputed is None:
        return published is None and recomputed is None
    if isinstance(rule, Round):
        return Decimal(published) == round_half_away(recomputed, rule.places)
    if rule == FULL:
        exact = Fraction(recomputed)
        terminating = _terminating_decimal(exact)
        if terminating is not None:
            return Decimal(published) == terminating
        return abs(Fraction(published) - exact) <= FULL_PRECISION_TOLERANCE * max(1, abs(exact))
    if isinstance(published, Decimal) or isinstance(recomputed, Fraction | Decimal):
        return Fraction(published) == Fraction(recomputed)
    return published == recomputed
