"""``surveys codebook init`` (#21.3): a draft codebook from an export's headers and answers, which ``surveys check
--codebook`` then uses. Our own synthetic exports with renamed headings (what another cluster's tool would write),
the real LimeSurvey and Kobo exports of ``../shared/fixtures/surveys`` (not ours: most columns stay unmatched,
listed for a person), a Kobo repeat group, and the one-line errors."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re

import pytest
import yaml

from ingest.surveys.draft import draft
from tests.eurostat.eurostat_testutil import shared_dir
from tests.surveys.conftest import INBOX
from tests.surveys.test_surveys_commands import run

SHARED = shared_dir()
EPSI = INBOX / "epsi" / "sme_needs" / "results-survey771203.csv"
RENAMED = {  # another export of the same questionnaire: other spellings of the headings
    b"id,submitdate,NUTS3,": b"ID,Submit date,NUTS-3,",  # case, spacing, punctuation
    b"IMP[digi]": b"importance[digitalisation]",  # the contract's field and code
    b",RD,": b",Q17RD,",  # unknown to every codebook: listed for a person
    b"SAT[digi]": b"Satisfaction with the cluster's services [Digitalisation]",  # a full-text heading
    b",NACE,": b",Your main activity,",  # matched by its answers: NACE codes
}


def listed(text: str) -> tuple[dict, list[str]]:
    """(columns, ignore patterns) of a draft."""
    doc = yaml.safe_load(text)
    return next(iter(doc["sections"].values()))["columns"], doc["ignore"]


def covers_every_header(text: str, headers: list[str]) -> bool:
    columns, ignore = listed(text)
    return all(h in columns or any(fnmatch.fnmatchcase(h.casefold(), p.casefold()) for p in ignore) for h in headers)


def init(path, tmp_path, language="de") -> tuple[int, str, str]:
    out = tmp_path / "draft.yml"
    code, said = run(["surveys", "codebook", "init", str(path), "--instrument", "sme_needs", "--language", language,
                      "-o", str(out)])  # fmt: skip
    return code, said, out.read_text(encoding="utf-8") if out.exists() else ""


def test_a_renamed_export_is_drafted_and_the_draft_loads_it(no_key_env, tmp_path):
    data = EPSI.read_bytes()
    for old, new in RENAMED.items():
        assert old in data
        data = data.replace(old, new)
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    code, said, text = init(path, tmp_path)
    assert code == 0 and said.startswith(f"wrote {tmp_path / 'draft.yml'}: 128 of 132 columns matched"), said
    columns, ignore = listed(text)
    assert columns["ID"] == "respondent_id" and columns["NUTS-3"] == "nuts3"
    assert columns["Submit date"] == {"field": "wave", "derive": "year"}
    assert columns["importance[digitalisation]"] == "importance[digitalisation]"
    assert columns["Satisfaction with the cluster's services [Digitalisation]"] == "satisfaction[digitalisation]"
    assert columns["Your main activity"] == "nace"
    assert "# answers are NACE codes" in text
    assert ignore == ["lastpage", "startlanguage", "seed", "Q17RD"]
    assert '"seed"  # ignored by codebook sme_needs.limesurvey.en (a system column)' in text
    assert '# answers: "Y", "N"' in text  # codes are shown to help the mapping
    header = data.decode("utf-8-sig").splitlines()[0].split(",")
    assert covers_every_header(text, header)
    assert "example.invalid" not in text and "Sample" not in text  # no answer that may be personal
    (tmp_path / "epsi" / "sme_needs").mkdir(parents=True)
    target = tmp_path / "epsi" / "sme_needs" / "export.csv"
    path.rename(target)
    code, out = run(["surveys", "check", str(target), "--codebook", str(tmp_path / "draft.yml")])
    assert code == 0, out
    assert out.startswith("OK: would load ") and "[codebook sme_needs.draft.de, wave 2025" in out


@pytest.mark.parametrize(
    "sample",
    [
        "mse_cluster/sme_needs/kobo_kkv_igenyfelmeres_2025.json",
        "indescat/sme_needs/indescat_necesidades_pymes_2025.xlsx",
    ],
)
def test_kobo_and_xlsx_exports_are_drafted_whole(no_key_env, tmp_path, sample):
    code, said, text = init(INBOX / sample, tmp_path)
    assert code == 0, said
    columns, _ignore = listed(text)
    assert {"nuts3", "nace", "size_class"} <= {t for t in columns.values() if isinstance(t, str)}
    code, out = run(["surveys", "check", str(INBOX / sample), "--codebook", str(tmp_path / "draft.yml")])
    assert code == 0 and out.startswith("OK: would load "), out


REAL = {
    "limesurvey_csv_code_headings__cvanbuckhave-PLR_tool_AP.csv": 45,
    "limesurvey_xlsx_code_headings_excel_resaved__bhermann-artifact-survey.xlsx": 227,
    "kobo_api_v2_data_group_names__dickoa-robotoolbox-vcr.json": 22,
}


@pytest.mark.skipif(SHARED is None, reason="../shared (real survey exports) is absent")
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_exports_of_other_surveys_are_drafted_and_refused_in_one_line_each(no_key_env, tmp_path, name):
    path = SHARED / "fixtures" / "surveys" / name
    code, said, text = init(path, tmp_path, language="en")
    assert code == 0 and "columns matched to contract fields" in said and f"of {REAL[name]} columns" in said
    columns, ignore = listed(text)
    assert len(columns) + len(ignore) == REAL[name]  # every column: mapped or listed
    if name.startswith("kobo"):
        assert columns == {"_id": "respondent_id", "_submission_time": {"field": "wave", "derive": "year"}}
        assert "# the question of 'v1/hh_sex' in another group or form version" in text  # group paths
        assert "Ahmadou" not in text  # a name column's answers are never copied
    # the draft is a codebook: `surveys check` parses with it and says, one line per problem, what is missing
    code, out = run(["surveys", "check", str(path), "--cluster", "epsi", "--codebook", str(tmp_path / "draft.yml")])
    assert code == 1 and out.startswith("QUARANTINE: ") and "Traceback" not in out
    assert re.search(r"^ERROR (missing_required_column|no_codebook): ", out, re.MULTILINE), out


def test_a_kobo_repeat_group_is_listed_not_mapped(no_key_env, tmp_path):
    records = [
        {"_id": i, "NUTS3": "BE100", "household": [{"household/name": "x", "household/age": 3}], "visits": "1"}
        for i in range(3)
    ]
    path = tmp_path / "kobo.json"
    path.write_text(json.dumps({"count": 3, "results": records}))
    result = draft(path.read_bytes(), path.name, "sme_needs")
    by_header = {c.header: c for c in result.columns}
    assert by_header["household"].target is None
    assert by_header["household"].note.startswith("repeat group (2 questions per item)")
    assert by_header["NUTS3"].target.field == "nuts3"


def test_errors_are_one_line(no_key_env, tmp_path, capsys):
    code, _said, _text = init(tmp_path / "missing.csv", tmp_path)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'missing.csv'}: ") and err.count("\n") == 1
    (tmp_path / "ole.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert init(tmp_path / "ole.xls", tmp_path)[0] == 2
    assert "OLE compound document" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text("id: [unclosed\n")
    code, _out = run(["surveys", "check", str(EPSI), "--codebook", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {bad}: cannot read the codebook") and err.count("\n") == 1


def test_a_semicolon_export_with_personal_answers(no_key_env, tmp_path):
    """The draft keeps the file's delimiter; short answers that may be personal (phone numbers, names, ids,
    postcodes) are never copied, scale answers given twice are; a language code like `no` stays a string."""
    rows = ["id;submitdate;NUTS3;PHONE;WHO;DOC;ZIP;SCALE"]
    for i in range(1, 5):
        rows.append(f"{i};2025-03-0{i} 10:00;BE100;061234567{i};JAN DE VRIES;1234567{i}Z;1012 AB;{1 + i % 2}")
    folder = tmp_path / "epsi" / "sme_needs"
    folder.mkdir(parents=True)
    path = folder / "export.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, said, text = init(path, tmp_path, language="no")
    assert code == 0, said
    doc = yaml.safe_load(text)
    assert doc["delimiter"] == ";" and doc["language"] == "no" and doc["id"] == "sme_needs.draft.no"
    for personal in ("0612345671", "JAN DE VRIES", "12345671Z", "1012 AB"):
        assert personal not in text
    assert '"SCALE"  # answers: "2", "1"' in text
    code, out = run(["surveys", "check", str(path), "--codebook", str(tmp_path / "draft.yml")])
    assert "wrong_delimiter" not in out and "missing_required_column" in out  # read with `;`; NACE, size absent


@pytest.mark.parametrize(
    "text",
    [
        "sections: [a]\n",
        "sections: {respondents: abc}\n",
        "sections: {respondents: {columns: [a]}}\n",
        "extends: [a]\nsections: {}\n",
    ],
)
def test_a_codebook_of_wrong_shape_is_one_line(no_key_env, tmp_path, capsys, text):
    bad = tmp_path / "bad.yml"
    bad.write_text("id: x\ninstrument: sme_needs\nlayout: csv\n" + text)
    code, _out = run(["surveys", "check", str(EPSI), "--codebook", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {bad}: ") and err.count("\n") == 1, err


def test_a_draft_that_cannot_be_written_names_the_output(no_key_env, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "folder" / "draft.yml"
    code, _said = run(["surveys", "codebook", "init", str(EPSI), "--instrument", "sme_needs", "--language", "de",
                       "-o", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {out}: cannot write the draft") and err.count("\n") == 1


def test_an_export_beyond_the_limits_is_refused_before_it_is_read_whole(no_key_env, tmp_path, monkeypatch, capsys):
    """Bounded like any survey file: the configured byte limit (read limit + 1 bytes at most) and the readers' row
    and cell limits."""
    from ingest.config import CATALOGUE_PATH
    from ingest.surveys.draft import DraftError
    from ingest.surveys.parsing.raw import Limits

    catalogue = tmp_path / "catalogue.yml"
    catalogue.write_text(CATALOGUE_PATH.read_text().replace("max_file_bytes: 20000000", "max_file_bytes: 1000"))
    monkeypatch.setenv("SS4GL_CATALOGUE", str(catalogue))
    code, _said, text = init(EPSI, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "larger than the configured limit of 1000 bytes" in err and not text
    tight = dataclasses.replace(Limits.of(), rows=10)
    with pytest.raises(DraftError, match="rows"):
        draft(EPSI.read_bytes(), EPSI.name, "sme_needs", tight)
