"""Privacy after a stage-level run over ALL sample inbox files (plus bad files that echo contact details):
no sample e-mail, phone or contact name in any warehouse table (every text/json column of every table of
every non-system schema, audit included), in the run's log output, in the quarantine JSON files, or in the
GX Data Docs. The contact details are read from the sample files themselves (codebook contact columns and
e-mail addresses anywhere in the text), then cross-checked with the generator (tools/survey_samples.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import openpyxl
import pytest

from ingest.surveys.privacy import EMAIL_RE
from ingest.surveys.spec import codebook, norm
from tests.integration._support import query
from tests.surveys.conftest import spec_of
from tools.survey_samples import SAMPLES, sample_path, sample_people

CONTACT_FIELDS = {"contact_name": "names", "contact_email": "emails", "contact_phone": "phones"}
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY", "USER-DEFINED")


def _records(path: Path, cb) -> tuple[list[dict[str, object]], str]:
    """Header -> cell records of one sample export, read independently of the parser; plus its full text."""
    data = path.read_bytes()
    if cb.layout == "xlsx":
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        ws = wb[cb.sections["respondents"].sheet] if cb.sections["respondents"].sheet in wb.sheetnames else wb.active
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        wb.close()
        header = [str(h) if h is not None else "" for h in rows[0]]
        recs = [dict(zip(header, r, strict=False)) for r in rows[1:]]
        text = "\n".join(" ".join("" if v is None else str(v) for v in r) for r in rows)
        return recs, text
    enc = cb.encoding.lower()
    text = data.decode("utf-8-sig" if enc in ("auto", "utf-8", "utf8", "utf-8-sig") else enc)
    if cb.layout == "json":
        doc = json.loads(text)
        return doc[cb.records or "results"], text
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=cb.delimiter)), text


def _contacts_from_files() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"names": set(), "emails": set(), "phones": set()}
    for spec in SAMPLES:
        if spec.instrument != "sme_needs":
            continue
        cb = codebook(spec.codebook)
        cols = cb.sections["respondents"].columns
        recs, text = _records(sample_path(spec), cb)
        for rec in recs:
            for header, value in rec.items():
                target = cols.get(norm(header))
                if target is not None and target.field in CONTACT_FIELDS and value not in (None, ""):
                    found[CONTACT_FIELDS[target.field]].add(str(value))
        found["emails"] |= set(EMAIL_RE.findall(text))  # also those typed into free text
    return found


@pytest.fixture(scope="module")
def contacts() -> dict[str, set[str]]:
    found = _contacts_from_files()
    people = [p for s in SAMPLES if s.instrument == "sme_needs" for p in sample_people(s)]
    # the files hold exactly the generator's fake people
    assert found["emails"] == {p["contact_email"] for p in people}
    assert found["phones"] == {p["contact_phone"] for p in people}
    assert found["names"] == {p["contact_name"] for p in people}
    assert min(len(v) for v in found.values()) > 50
    return found


class Needles:
    """Every contact string (plus phones without separators, a reformatted echo); ``hits(text)`` finds them."""

    def __init__(self, contacts: dict[str, set[str]]) -> None:
        self.kind = {v: kind for kind, values in contacts.items() for v in values}
        for phone in contacts["phones"]:
            self.kind.setdefault(re.sub(r"[\s./()-]", "", phone), "phones (compact)")
        self.pattern = re.compile("|".join(re.escape(n) for n in sorted(self.kind, key=len, reverse=True)))

    def hits(self, text: str) -> list[str]:
        if not self.pattern.search(text):
            return []
        return sorted(f"{k}: {n}" for n, k in self.kind.items() if n in text)


@pytest.fixture(scope="module")
def needles(contacts) -> Needles:
    return Needles(contacts)


def test_contacts_are_in_the_sample_files(contacts):
    # the privacy path is exercised: e-mails typed into free text exist in the samples
    people = [p for s in SAMPLES if s.instrument == "sme_needs" for p in sample_people(s)]
    assert any(p["offers_text"] and p["contact_email"] in p["offers_text"] for p in people)


def test_no_contact_detail_in_any_warehouse_table(survey_run, needles):
    url = survey_run.stage.url
    cols = query(
        url,
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema not in ('pg_catalog', 'information_schema') and c.table_schema not like 'pg_%%'"
        " and t.table_type = 'BASE TABLE' and c.data_type = any(%s) order by 1, 2, 3",
        list(TEXT_TYPES),
    )
    tables = {(s, t) for s, t, _ in cols}
    assert ("audit", "quarantine") in tables and ("raw", "survey_sme_respondents") in tables
    assert ("audit", "validation_results") in tables and ("audit", "batches") in tables
    scanned = leaks = 0
    found: list[str] = []
    for schema, table in sorted(tables):
        names = [c for s, t, c in cols if (s, t) == (schema, table)]
        select = ", ".join(f'"{c}"::text' for c in names)
        for row in query(url, f'select {select} from "{schema}"."{table}"'):  # noqa: S608 - catalog names
            scanned += 1
            text = "\x1f".join(v for v in row if v)
            hits = needles.hits(text)
            if hits:
                leaks += 1
                found.append(f"{schema}.{table}: {hits[:3]}")
    assert scanned > 5000
    assert leaks == 0, found[:20]


def test_raw_tables_hold_the_respondents_pseudonymised(survey_run):
    url = survey_run.stage.url
    n = query(url, "select count(*), count(distinct respondent_pid) from raw.survey_sme_respondents")[0]
    assert n[0] > 400 and all(
        len(p) == 32 for (p,) in query(url, "select respondent_pid from raw.survey_sme_respondents limit 50")
    )
    scrubbed = query(url, "select count(*) from raw.survey_sme_respondents where offers_text like '%%[email]%%'")
    assert scrubbed[0][0] > 0  # contact details typed into free text were scrubbed, the text kept


def test_no_contact_detail_in_logs_or_output(survey_run, needles):
    assert len(survey_run.log_text) > 1000  # the run did log (batch by batch)
    assert "quarantined" in survey_run.log_text
    assert needles.hits(survey_run.log_text) == []
    assert needles.hits(survey_run.stdout) == []
    assert needles.hits(survey_run.error) == []  # the ValidationFailed summary


def test_no_contact_detail_in_quarantine_files(survey_run, needles):
    sides = sorted(survey_run.inbox.rglob("*.quarantine.json"))
    assert len(sides) >= 15
    for side in sides:
        text = side.read_text(encoding="utf-8")
        assert needles.hits(text) == [], side
    # the file whose code cells hold an e-mail and a phone: reason kept (code, row, column), the cell described
    # by its shape only, never echoed (not even scrubbed)
    doc = json.loads((survey_run.inbox / "epsi/sme_needs/pii-in-code-cells.csv.quarantine.json").read_text())
    bad = [p for p in doc["problems"] if p["code"] in ("unknown_nuts3", "unknown_nace")]
    assert bad and all(p["row"] and p["column"] for p in bad)
    found = [p["found"] for p in bad]
    assert all(f.startswith("text of ") and ("e-mail address" in f or "phone number" in f) for f in found), found
    assert all("[email]" not in p["message"] and "[phone]" not in p["message"] for p in bad)


def test_no_contact_detail_in_data_docs(survey_run, needles):
    docs = survey_run.stage.home / "docs" / "gx"
    files = [p for p in docs.rglob("*") if p.is_file() and p.suffix in (".html", ".json")]
    assert files
    for p in files:
        assert needles.hits(p.read_text(encoding="utf-8", errors="replace")) == [], p


def test_scanner_positive_control(survey_run, needles):
    """The same scanner does find the contact details where they legitimately are: the raw archive (bytes as
    received) and the inbox files themselves."""
    sample = survey_run.inbox / "epsi/sme_needs/results-survey771203.csv"
    assert needles.hits(sample.read_text(encoding="utf-8-sig"))
    archived = [p for p in (survey_run.stage.home / "archive").rglob("*") if p.is_file()]
    assert any(needles.hits(p.read_bytes().decode("utf-8", "replace")) for p in archived)


def test_contact_name_in_a_coded_cell_is_not_echoed(contacts):
    from ingest.surveys.parse import parse_file
    from tests.surveys.conftest import KEY, edit_csv, sample_bytes, set_cell

    person = sample_people(spec_of("epsi", "sme_needs"))[0]
    data, name = sample_bytes("epsi", "sme_needs")
    bad = edit_csv(data, "utf-8", ",", lambda rows: set_cell(rows, 1, "NUTS3", person["contact_name"]))
    result = parse_file(bad, name, "epsi", "sme_needs", key=KEY)
    assert not result.ok
    assert Needles(contacts).hits(json.dumps([p.as_dict() for p in result.problems], ensure_ascii=False)) == []
