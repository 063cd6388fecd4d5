"""Keyed pseudonyms, key loading, scrubbing and masking."""

from __future__ import annotations

import pytest

from ingest.surveys.privacy import PseudonymKeyMissing, load_key, mask, pseudonymise, scrub


def test_pseudonyms_stable_per_key_and_different_across_keys() -> None:
    a = pseudonymise("epsi|sme_needs|17", b"k" * 20)
    assert a == pseudonymise("epsi|sme_needs|17", b"k" * 20)
    assert a != pseudonymise("epsi|sme_needs|17", b"j" * 20)
    assert a != pseudonymise("epsi|sme_needs|18", b"k" * 20)
    assert len(a) == 32 and int(a, 16) >= 0


def test_missing_key_is_one_clear_line(no_key_env: None) -> None:
    with pytest.raises(PseudonymKeyMissing) as exc:
        load_key()
    msg = str(exc.value)
    assert "SS4GL_PSEUDONYM_KEY" in msg and "\n" not in msg


def test_too_short_key_is_refused(no_key_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SS4GL_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyMissing):
        load_key()


def test_key_from_env(no_key_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SS4GL_PSEUDONYM_KEY", "a-long-enough-test-secret")
    assert load_key() == b"a-long-enough-test-secret"


def test_airflow_lookup_fails_softly(no_key_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))  # configured but no metadata DB / variable
    with pytest.raises(PseudonymKeyMissing):
        load_key()


def test_empty_key_refused_by_pseudonymise() -> None:
    with pytest.raises(PseudonymKeyMissing):
        pseudonymise("x", b"")


@pytest.mark.parametrize(
    "text",
    [
        "mail me: marta.prova3@example.invalid please",
        "bel +31 6 1234 5678 of 06-12345678",
        "tel. 0034 93 123 45 67",
        "appelez le +33 4 79 12 34 56",
        "+36 52 123 4567",
    ],
)
def test_scrub_removes_emails_and_phones(text: str) -> None:
    out = scrub(text)
    assert "@" not in out and not any(ch.isdigit() for ch in out)


def test_scrub_keeps_ordinary_numbers() -> None:
    assert scrub("In 2025 we had 120 members and 35% SMEs") == "In 2025 we had 120 members and 35% SMEs"


def test_mask_is_one_line_and_short() -> None:
    assert mask("a\nb@example.invalid\n" + "x" * 200).count("\n") == 0
    assert len(mask("x" * 200)) <= 60
    assert mask(None) is None
