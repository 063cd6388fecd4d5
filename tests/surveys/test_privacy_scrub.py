"""The free-text scrubber and the echo rule of problem messages, in both directions: personal data out,
ordinary survey numbers (years, amounts, percentages) and codes kept."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.surveys.privacy import EMAIL_RE, describe, echo, known, mask, scrub
from ingest.surveys.problems import make_problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +1 (555) 123-4567 today", "call [phone] today"),
        ("+44 (0)20 7946 0958", "[phone]"),
        ("móvil 612 345 678", "móvil [phone]"),
        ("tel 91 123 45 67.", "tel [phone]."),
        ("612-345-678 or 555 123 4567", "[phone] or [phone]"),
        ("(555) 123-4567", "[phone]"),
        ("(020) 123 4567", "[phone]"),
        ("bel +31 6 1234 5678 of 06-12345678", "bel [phone] of [phone]"),
        ("0034 93 123 45 67", "[phone]"),
    ],
)
def test_scrub_catches_phone_forms(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jan(at)example.com please", "write to [email] please"),
        ("jan [at] example [dot] com", "[email]"),
        ("jan (at) example (dot) com", "[email]"),
        ("jan{at}example.com", "[email]"),
        ("JAN [AT] EXAMPLE [DOT] ORG", "[email]"),
        ("jan@example [dot] com", "[email]"),
        ("mail jan@localhost.", "mail [email]."),
        ("marta.prova3@example.invalid", "[email]"),
        ("jan@localhost / +32 2 123 45 67", "[email] / [phone]"),
    ],
)
def test_scrub_catches_email_forms(text: str, expected: str) -> None:
    assert scrub(text) == expected
    assert "jan" not in scrub(text).lower()


@pytest.mark.parametrize(
    "text",
    [
        "In 2024 we had 120 members and 35% SMEs",
        "Turnover 5 M EUR in 2023, 12,5 % export",
        "Budget 612 345 678 EUR",  # a large amount, not a phone
        "€ 612 345 678 for the region",
        "1 500 000 000 EUR",
        "1 500 000 000",
        "years 2019-2024, 2025 2026 2027",
        "scores 10 20 30 40 50",
        "between 100 and 250 employees (2024)",
        "NACE 93.11 and 93.13; NUTS ES511",
        "Score 4.5/5, 3 events, 20 000 visitors",
        "meet us (at) the fair",
        "@SUM(A1:A9)",
        '=HYPERLINK("http://evil.invalid","clic")',
        "-20% energy use after our LED retrofit",
        "founded 1998, 45 staff",
    ],
)
def test_scrub_keeps_ordinary_text_and_numbers(text: str) -> None:
    assert scrub(text) == text


def test_email_re_finds_the_plain_form_only_once() -> None:
    assert EMAIL_RE.findall("a jan.jansen@example.invalid b") == ["jan.jansen@example.invalid"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("7", "7"),
        ("-1", "-1"),
        ("0", "0"),
        ("3000000000", "3000000000"),
        ("12,5", "12,5"),
        ("35%", "35%"),
        (7, "7"),
        (2.5, "2.5"),
        (True, "True"),
        (dt.date(2024, 3, 1), "2024-03-01"),
        (dt.datetime(2024, 3, 1, 10, 0), "2024-03-01T10:00:00"),
        ("2024-12-01 10:00:00", "2024-12-01 10:00:00"),
        ("", ""),
        (known("BE10"), "BE10"),
        (known(";"), ";"),
        (known("atlantis/sme_needs/jan@example.invalid.csv"), "atlantis/sme_needs/[email]"),
    ],
)
def test_safe_values_are_echoed(value: object, shown: str) -> None:
    assert echo(value) == (shown, True)
    assert mask(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Müller", "text of 6 characters"),
        ("J.Jansen", "text of 8 characters"),
        ("Jan Jansen", "text of 10 characters"),
        ("XX999", "text of 5 characters"),
        ("jan(at)example.com", "text of 18 characters (contains an e-mail address)"),
        ("jan@localhost", "text of 13 characters (contains an e-mail address)"),
        ("0612345678", "text of 10 characters (contains a phone number)"),  # digits only, yet a phone
        ("+3224567890", "text of 11 characters (contains a phone number)"),
        ("612 345 678", "text of 11 characters (contains a phone number)"),
        ("1.234,5", "text of 7 characters"),
        ("a", "text of 1 character"),
    ],
)
def test_other_values_are_described_by_shape(value: str, shown: str) -> None:
    assert echo(value) == (shown, False)
    assert describe(value) == shown
    for word in ("Müller", "Jansen", "jan", "XX", "0612", "612"):
        assert word not in shown


def test_problem_message_names_rule_row_and_column_not_the_value() -> None:
    p = make_problem(
        "error",
        "unknown_nuts3",
        "f.csv",
        "unknown nuts3 code in nuts3",
        row=3,
        column="NUTS3",
        expected="a NUTS-3 code in BE10",
        found="Müller",
    )
    assert "Müller" not in p.message and "Müller" not in (p.found or "")
    assert p.message == (
        "f.csv: row 3, column NUTS3: unknown nuts3 code in nuts3; expected a NUTS-3 code in BE10;"
        " found text of 6 characters"
    )
    q = make_problem("error", "likert_out_of_range", "f.csv", "out of range", row=3, column="IMP", found="7")
    assert q.found == "7" and q.message.endswith("found '7'")


def test_problem_file_and_column_are_scrubbed() -> None:
    p = make_problem(
        "error",
        "wrong_depth",
        "jan@example.invalid.csv",
        "misplaced",
        column="tel +32 2 123 45 67",
        found=known("jan@example.invalid.csv"),
    )
    assert "jan" not in p.message and "123 45 67" not in p.message
    assert p.file in p.message and p.column in p.message
