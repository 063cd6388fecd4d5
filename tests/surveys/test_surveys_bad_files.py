"""Each kind of bad file is quarantined (or warned about) with a specific code and a located message."""

from __future__ import annotations

import pytest

from ingest.surveys.parse import ParseResult
from tests.surveys.conftest import assert_located, edit_csv, edit_json, edit_xlsx, parse, sample_bytes, set_cell

EPSI = ("epsi", "sme_needs")  # LimeSurvey CSV, comma, UTF-8 + BOM, English
MONTAGNE = ("cluster_montagne", "sme_needs")  # LimeSurvey CSV, semicolon, Windows-1252, French


def only(r: ParseResult, code: str, severity: str = "error"):
    hits = [p for p in r.problems if p.code == code and p.severity == severity]
    assert hits, [f"{p.code}: {p.message}" for p in r.problems]
    for p in hits:
        assert_located(p)
    return hits[0]


def epsi_edit(fn, **kw) -> tuple[bytes, str]:
    data, name = sample_bytes(*EPSI)
    return edit_csv(data, "utf-8", ",", fn, **kw), name


def test_wrong_encoding_windows_1252_declared_utf8() -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 3, "COMMENTS", "Très utile"), bom=False)
    data = data.decode("utf-8").encode("cp1252")
    r = parse(data, name, "epsi")
    p = only(r, "encoding")
    assert not r.ok and r.tables == {}
    assert p.row == 4 and p.column == "COMMENTS" and "Windows-1252" in p.message


def test_wrong_encoding_utf8_declared_windows_1252() -> None:
    data, name = sample_bytes(*MONTAGNE)
    r = parse(data.decode("cp1252").encode("utf-8"), name, "cluster_montagne")
    p = only(r, "encoding")
    assert "declares cp1252 but the file is UTF-8" in p.message


def test_wrong_delimiter() -> None:
    data, name = sample_bytes(*EPSI)
    semi = edit_csv(data, "utf-8", ",", lambda rows: None)
    semi = edit_csv(semi, "utf-8", ",", lambda rows: None)  # same file ...
    import csv
    import io

    rows = list(csv.reader(io.StringIO(semi.decode("utf-8-sig"), newline="")))
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=";", lineterminator="\r\n").writerows(rows)  # ... saved with ';'
    r = parse(b"\xef\xbb\xbf" + buf.getvalue().encode(), name, "epsi")
    p = only(r, "wrong_delimiter")
    assert "gives 1 column" in p.message and p.found == ";" and p.row == 1


def test_missing_required_column() -> None:
    def drop(rows):
        i = rows[0].index("NACE")
        for row in rows:
            del row[i]

    data, name = epsi_edit(drop)
    p = only(parse(data, name, "epsi"), "missing_required_column")
    assert p.column == "NACE" and p.row == 1


def test_unknown_extra_column_is_only_a_warning() -> None:
    def add(rows):
        rows[0].append("Q99_NEW")
        for row in rows[1:]:
            row.append("x")

    data, name = epsi_edit(add)
    r = parse(data, name, "epsi")
    assert r.ok
    p = only(r, "unknown_column", "warning")
    assert p.column == "Q99_NEW"


def test_duplicated_respondent() -> None:
    data, name = epsi_edit(lambda rows: rows.append(list(rows[5])))
    r = parse(data, name, "epsi")
    p = only(r, "duplicate_respondent")
    assert (p.row, p.column) == (59, "id") and "row 6" in p.expected


@pytest.mark.parametrize("value", ["7", "0", "-1"])
def test_likert_out_of_range(value: str) -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 2, "IMP[digi]", value))
    p = only(parse(data, name, "epsi"), "likert_out_of_range")
    assert (p.row, p.column, p.found) == (3, "IMP[digi]", value)


def test_dont_know_is_missing_not_zero() -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 2, "IMP[digi]", "99"))
    r = parse(data, name, "epsi")
    assert r.ok
    ratings = r.tables["survey_sme_service_ratings"]
    row = ratings[(ratings["service"] == "digitalisation")].iloc[1]
    assert row["importance"] is None or str(row["importance"]) == "<NA>"


def test_unknown_cluster_argument() -> None:
    data, name = sample_bytes(*EPSI)
    p = only(parse(data, name, "atlantis"), "unknown_cluster")
    assert p.found == "atlantis"


def test_cluster_column_mismatch_and_unknown() -> None:
    data, name = sample_bytes("indescat", "sme_needs")

    def fn(wb):
        ws = wb["Respuestas"]
        col = [c.value for c in ws[1]].index("Clúster") + 1
        ws.cell(row=3, column=col, value="cluster_montagne")
        ws.cell(row=4, column=col, value="Atlantis")

    r = parse(edit_xlsx(data, fn), name, "indescat")
    assert only(r, "cluster_mismatch").row == 3
    assert only(r, "unknown_cluster").row == 4


@pytest.mark.parametrize("value", ["ES300", "FRK27", "XX999"])
def test_unknown_nuts3(value: str) -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 1, "NUTS3", value))
    p = only(parse(data, name, "epsi"), "unknown_nuts3")
    assert (p.row, p.column) == (2, "NUTS3") and "BE10" in p.expected


def test_unknown_nace() -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 1, "NACE", "99.99"))
    p = only(parse(data, name, "epsi"), "unknown_nace")
    assert p.column == "NACE"


def test_nace_formats_are_normalised() -> None:
    data, name = epsi_edit(lambda rows: (set_cell(rows, 1, "NACE", "9311"), set_cell(rows, 2, "NACE", "93.13 Fitness")))
    r = parse(data, name, "epsi")
    assert r.ok
    assert list(r.tables["survey_sme_respondents"]["nace"][:2]) == ["93.11", "93.13"]


def test_unknown_service_code_in_kobo_list() -> None:
    data, name = sample_bytes("mse_cluster", "sme_needs")
    r = parse(
        edit_json(data, lambda d: d["results"][2].__setitem__("szolgaltatasok/igenybe_vett", "b2b teleportacio")),
        name,
        "mse_cluster",
    )
    p = only(r, "unknown_service")
    assert (p.row, p.column) == (3, "szolgaltatasok/igenybe_vett")


def test_formula_like_cells_are_kept_verbatim_and_flagged() -> None:
    data, name = sample_bytes("indescat", "sme_needs")
    formula = '=HYPERLINK("http://evil.invalid","clic")'

    def fn(wb):
        ws = wb["Respuestas"]
        headers = [c.value for c in ws[1]]
        ws.cell(row=2, column=headers.index("Qué puede ofrecer (texto libre)") + 1, value=formula)
        ws.cell(row=3, column=headers.index("Comentarios") + 1, value="@SUM(A1:A9)")
        ws.cell(row=4, column=headers.index("Porcentaje de exportación (%)") + 1, value=-5)

    r = parse(edit_xlsx(data, fn), name, "indescat")
    assert only(r, "value_out_of_range").column == "Porcentaje de exportación (%)"  # -5 is a number, not a formula
    data2 = edit_xlsx(data, lambda wb: fn(wb) or wb["Respuestas"].cell(row=4, column=8, value=5))
    r = parse(data2, name, "indescat")
    assert r.ok, [p.message for p in r.errors]
    warn = [p for p in r.problems if p.code == "formula_like"]
    assert {(p.row, p.column) for p in warn} == {(2, "Qué puede ofrecer (texto libre)"), (3, "Comentarios")}
    for p in warn:
        assert_located(p)
    resp = r.tables["survey_sme_respondents"]
    assert resp.loc[0, "offers_text"] == formula and resp.loc[1, "comments"] == "@SUM(A1:A9)"
    assert list(resp["formula_like"][:3]) == [True, True, False]


def test_empty_file() -> None:
    for data in (b"", b"\xef\xbb\xbf", b"\r\n  \n"):
        p = only(parse(data, "empty.csv", "epsi"), "empty_file")
        assert "empty.csv" in p.message


def test_header_only_file() -> None:
    data, name = sample_bytes(*EPSI)
    header = data.split(b"\r\n")[0] + b"\r\n"
    p = only(parse(header, name, "epsi"), "header_only")
    assert p.row == 2


def test_header_only_json() -> None:
    p = only(parse(b'{"count": 0, "results": []}', "k.json", "mse_cluster"), "header_only")
    assert "k.json" in p.message


def test_corrupt_xlsx() -> None:
    data, name = sample_bytes("indescat", "sme_needs")
    for bad in (data[: len(data) // 2], b"PK\x03\x04" + b"\x00" * 200, b"not a workbook at all"):
        p = only(parse(bad, name, "indescat"), "corrupt_xlsx")
        assert name in p.message


def test_password_protected_xlsx() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024
    p = only(parse(ole, "protegido.xlsx", "indescat"), "encrypted_xlsx")
    assert "password-protected" in p.message and "protegido.xlsx" in p.message


def test_oversize_file() -> None:
    data, name = sample_bytes(*EPSI)
    p = only(parse(data, name, "epsi", max_bytes=1000), "file_too_large")
    assert str(len(data)) in p.message


def test_oversize_uses_catalogue_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.config import load_catalogue

    cat = load_catalogue()
    monkeypatch.setitem(cat.sources["surveys"], "max_file_bytes", 10)
    only(parse(b"id,NACE\n1,93.11\n", "x.csv", "epsi"), "file_too_large")


def test_header_matching_no_codebook() -> None:
    p = only(parse(b"foo,bar\n1,2\n", "random.csv", "epsi"), "no_codebook")
    assert "'foo,bar'" in p.message


def test_personal_values_are_masked_in_problems() -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 1, "NUTS3", "jan.jansen@example.invalid +32 2 123 45 67"))
    p = only(parse(data, name, "epsi"), "unknown_nuts3")
    assert "@" not in p.message and "123 45 67" not in p.message and "jan" not in p.message
    # the rule that failed and the shape of the cell, never what was typed
    assert p.found == "text of 42 characters (contains an e-mail address and a phone number)"
    assert (p.row, p.column) == (2, "NUTS3") and p.found in p.message


@pytest.mark.parametrize("value", ["Müller", "J.Jansen", "jan(at)example.com", "jan@localhost", "Jan Jansen"])
def test_single_word_personal_values_are_not_echoed(value: str) -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 1, "NUTS3", value))
    p = only(parse(data, name, "epsi"), "unknown_nuts3")
    assert value not in p.message and value not in p.found and p.found.startswith(f"text of {len(value)} ")
    assert not any(part in p.message for part in ("Müller", "Jansen", "jan", "example", "localhost"))


def test_numbers_and_codes_are_still_echoed() -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 2, "IMP[digi]", "3000000000"))
    p = only(parse(data, name, "epsi"), "likert_out_of_range")
    assert p.found == "3000000000" and "found '3000000000'" in p.message


def test_soa_missing_required_row_and_negative_counts() -> None:
    data, name = sample_bytes("indescat", "state_of_affairs")

    def fn(wb):
        ws = wb["Perfil"]
        for row in ws.iter_rows(min_row=2):
            if row[0].value == "Miembros PYME":
                row[0].value = "Miembros PYMEs (typo)"
            if row[0].value == "Miembros gran empresa":
                row[1].value = -3

    r = parse(edit_xlsx(data, fn), name, "indescat", "state_of_affairs")
    assert only(r, "missing_required_column").column == "Miembros PYME"
    assert only(r, "value_out_of_range").column == "Miembros gran empresa"
    assert only(r, "unknown_column", "warning").column == "Miembros PYMEs (typo)"


def test_soa_missing_sheet() -> None:
    data, name = sample_bytes("sports_technology", "state_of_affairs")
    r = parse(edit_xlsx(data, lambda wb: wb.remove(wb["SWOT"])), name, "sports_technology", "state_of_affairs")
    only(r, "missing_section")


def test_mixed_waves() -> None:
    data, name = epsi_edit(lambda rows: set_cell(rows, 4, "submitdate", "2024-12-01 10:00:00"))
    p = only(parse(data, name, "epsi"), "mixed_waves")
    assert p.row == 5


def test_unknown_instrument() -> None:
    data, name = sample_bytes(*EPSI)
    only(parse(data, name, "epsi", "member_census"), "unknown_instrument")
