"""``ss4gl surveys codebook init``: a draft codebook from a real export's headers and answers.

The export is read by the parser's own readers (bounded like any survey file): a CSV (LimeSurvey code or
full-text headings, any delimiter, UTF-8 or Windows-1252), an XLSX (first sheet with data: one row per record) or
a KoboToolbox JSON (group paths such as ``v1/hh_sex``; repeat groups are listed, never mapped). Each column is
matched to a contract field where its header or answers make it likely, and the draft says why:

1. a header of one of our codebooks for the instrument (any language), exactly or nearly (``difflib``);
2. a contract field name, or ``field[code]`` / an array heading ``PREFIX[token]`` whose prefix and token our
   codebooks know (``IMP[digi]`` -> ``importance[digitalisation]``);
3. answers that look like one kind of value: e-mail addresses, NUTS 3 or NACE codes of the reference lists,
   dates (the wave, ``derive: year``).

The labels (boolean, Likert, missing, code lists) start as those of the codebook whose headers matched most;
every column not matched is listed under ``ignore`` for a person to map, with a few of its answers only when they
cannot be personal data (codes, small numbers). The draft is a codebook: ``ss4gl surveys check FILE --codebook
DRAFT.yml`` parses the file with it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ingest.surveys.parsing.raw import FileRejected, Limits, RawSection, first_line, is_blank, table_section
from ingest.surveys.parsing.read_csv import csv_rows, decode_csv, sniff_delimiter
from ingest.surveys.parsing.read_json import json_records
from ingest.surveys.parsing.read_xlsx import read_workbook
from ingest.surveys.parsing.readers import sniff_layout
from ingest.surveys.problems import Problems
from ingest.surveys.spec import (
    Codebook,
    Target,
    _codebook,
    load_codebooks,
    load_contract,
    nace_reference,
    norm,
    nuts3_reference,
    raw_codebooks,
    resolve_extends,
)

SAMPLE = 200  # answers looked at per column
LIKELY = 0.8  # share of a column's answers that must look alike
NEAR = 0.88  # difflib ratio for a header close to a known one
_ARRAY = re.compile(r"^(?P<prefix>.+?)\s*\[(?P<token>[^\]]+)\]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_DATE = re.compile(r"^(?:19|20)\d\d-\d\d-\d\d(?:[ T].*)?$")


class DraftError(ValueError):
    """The export cannot be drafted from (one line)."""


@dataclass
class Column:
    header: str
    answers: list[str]
    target: Target | None = None
    why: str = ""
    note: str = ""


@dataclass
class Draft:
    layout: str
    records: int
    columns: list[Column]
    base: Codebook | None  # the known codebook whose headers matched most (labels start from it)
    repeat_groups: dict[str, list[str]] = field(default_factory=dict)
    sheet: str | None = None
    delimiter: str = ","
    section: str = ""  # the contract section the columns map to
    codes: frozenset[str] = frozenset()  # every canonical code of the contract (answers that may be shown)

    @property
    def multi_separator(self) -> str:
        """The base codebook's, else Kobo's space (select_multiple) for JSON, else ``;``."""
        if self.base is not None:
            return next(iter(self.base.sections.values())).multi_separator
        return " " if self.layout == "json" else ";"


# ------------------------------------------------------------------------------------------------ reading
def read_export(data: bytes, filename: str, limits: Limits | None = None) -> tuple[str, RawSection, dict, str]:
    """(layout, the record table, repeat groups: key -> inner keys, the sheet read or the CSV delimiter) of an
    export; DraftError if unreadable."""
    limits = limits or Limits.of()
    layout = sniff_layout(data, filename)
    if layout == "ole":
        raise DraftError("an OLE compound document (protected workbook or legacy .xls): save it as .xlsx")
    probe = _codebook({"id": "draft", "instrument": "-", "layout": layout, "encoding": "auto", "sections": {}}, Path())
    pr = Problems(filename)
    where = ""  # the sheet read (xlsx) or the delimiter (csv)
    try:
        if layout == "json":
            section = json_records(data, probe, pr, limits)
        elif layout == "xlsx":
            sheets = read_workbook(data, pr, limits)
            where = next((n for n, r in sheets.items() if any(not is_blank(v) for _, row in r for v in row)), "")
            section = table_section(sheets[where] if where else [])
        else:
            text = decode_csv(data, probe, pr)
            where = sniff_delimiter(first_line(text))
            section = table_section(csv_rows(text, where, pr, limits))
    except FileRejected:
        section = None
    if section is None or pr.has_errors:
        first = next(iter(pr), None)
        raise DraftError(first.message if first else f"cannot read the {layout} export")
    if not section.headers:
        raise DraftError(f"the {layout} export has no header row")
    repeats: dict[str, list[str]] = {}
    if layout == "json":  # repeat groups: lists of objects, joined into one text cell by the reader
        for rec in _json_list(data):
            for key, value in rec.items():
                if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                    inner = repeats.setdefault(key, [])
                    inner += [k for item in value for k in item if k not in inner]
    return layout, section, repeats, where


def _json_list(data: bytes) -> list[dict]:
    obj = json.loads(data.decode("utf-8-sig"))
    records = obj.get("results", []) if isinstance(obj, dict) else obj
    return [r for r in records if isinstance(r, dict)]


# ------------------------------------------------------------------------------------------------ matching
class Knowledge:
    """What our codebooks and the contract say about the headers of one instrument."""

    def __init__(self, instrument: str) -> None:
        self.contract = load_contract(instrument)
        self.codebooks = [cb for cb in load_codebooks() if cb.instrument == instrument]
        self.fields = {name: spec for s in self.contract.sections.values() for name, spec in s.fields.items()}
        self.headers: dict[str, tuple[Target, str]] = {}  # normalised header -> (target, codebook id)
        self.prefixes: dict[str, str] = {}  # normalised array prefix -> field (IMP -> importance)
        self.tokens: dict[str, str] = {}  # normalised token -> canonical code (digi -> digitalisation)
        for code_list in self.contract.code_lists.values():
            self.tokens.update({norm(c): c for c in code_list})
        for cb in self.codebooks:
            for section in cb.sections.values():
                for key, target in section.columns.items():
                    self.headers.setdefault(key, (target, cb.id))
                    m = _ARRAY.match(section.headers[key])
                    if m and target.code:
                        self.prefixes.setdefault(norm(m["prefix"]), target.field)
                        self.tokens.setdefault(norm(m["token"]), target.code)
        self.section = next(n for n, s in self.contract.sections.items() if s.kind == "table")

    def by_header(self, header: str) -> tuple[Target, str] | None:
        key = norm(header)
        for candidate in dict.fromkeys((key, key.rsplit("/", 1)[-1])):  # Kobo: the question name of a group path
            if candidate in self.headers:
                target, cb = self.headers[candidate]
                return target, f"header of codebook {cb}"
            name = candidate.replace(" ", "_")
            if name in self.fields:
                return Target(name), "a contract field name"
            m = _ARRAY.match(candidate)
            if m:
                prefix, token = norm(m["prefix"]), norm(m["token"])
                fld = prefix.replace(" ", "_") if prefix.replace(" ", "_") in self.fields else self.prefixes.get(prefix)
                if fld is None:  # full-text heading: "Importance of the cluster's services [Digitalisation]"
                    words = set(re.findall(r"[a-z0-9]+", prefix))
                    fld = next((f for f, spec in self.fields.items() if spec.per and f in words), None)
                code = self.tokens.get(token)
                if fld and code and self.fields[fld].per:
                    return Target(fld, code), f"array heading: {prefix!r} is {fld}, {token!r} is {code}"
        near = difflib.get_close_matches(key, list(self.headers), n=1, cutoff=NEAR)
        if near:
            target, cb = self.headers[near[0]]
            return target, f"close to header {near[0]!r} of codebook {cb}"
        return None

    def by_answers(self, answers: list[str]) -> tuple[Target, str] | None:
        if not answers:
            return None

        def share(test) -> float:
            return sum(1 for a in answers if test(a)) / len(answers)

        if share(lambda a: bool(_EMAIL.match(a))) >= LIKELY:
            return Target("contact_email"), "answers are e-mail addresses"
        if "nuts3" in self.fields and share(lambda a: a.upper() in nuts3_reference()) >= LIKELY:
            return Target("nuts3"), "answers are NUTS 3 codes"
        if "nace" in self.fields and share(lambda a: a in nace_reference()) >= LIKELY:
            return Target("nace"), "answers are NACE codes"
        if share(lambda a: bool(_DATE.match(a))) >= LIKELY:
            return Target("wave", derive="year"), "answers are dates: the wave is their year"
        return None


def draft(data: bytes, filename: str, instrument: str, limits: Limits | None = None) -> Draft:
    """Match every column of the export to a contract field where likely."""
    try:
        know = Knowledge(instrument)
    except (KeyError, StopIteration):
        raise DraftError(f"unknown survey instrument {instrument!r} (or one without a table section)") from None
    layout, section, repeats, where = read_export(data, filename, limits)

    def answers(header: str) -> list[str]:
        cells = (r.cells.get(header, ("",))[0] for r in section.records[:SAMPLE])
        return [str(v).strip() for v in cells if not is_blank(v)]

    columns = [Column(h, answers(h)) for h in section.headers]
    taken: dict[tuple[str, str | None], str] = {}
    votes: Counter[str] = Counter()
    seen_base: dict[str, str] = {}  # Kobo: question name -> the first group path holding it
    for col in columns:
        base_name = col.header.rsplit("/", 1)[-1]
        if "/" in col.header and base_name in seen_base:
            col.note = f"the question of {seen_base[base_name]!r} in another group or form version"
        seen_base.setdefault(base_name, col.header)
        if col.header in repeats:
            col.note = f"repeat group ({len(repeats[col.header])} questions per item): the contract has no repeats"
    # headers first (what a codebook or the contract names), then answers for the columns left
    for matcher in (lambda c: know.by_header(c.header), lambda c: know.by_answers(c.answers)):
        for col in columns:
            if col.target or col.note.startswith("repeat group"):
                continue
            found = matcher(col)
            if not found:
                continue
            target, why = found
            slot = (target.field, target.code)
            if slot in taken:
                name = f"{target.field}[{target.code}]" if target.code else target.field
                col.note = col.note or f"also {name} ({why}): taken by {taken[slot]!r}"
                continue
            col.target, col.why, col.note = target, why, ""
            taken[slot] = col.header
            m = re.search(r"codebook (\S+)", why)
            if m:
                votes[m.group(1)] += 1
    base = next((cb for cb in know.codebooks if votes and cb.id == votes.most_common(1)[0][0]), None)
    for col in columns:
        if base is not None and not col.target and not col.note and base.ignored(col.header):
            col.note = f"ignored by codebook {base.id} (a system column)"
    sheet, delimiter = (where or None, ",") if layout == "xlsx" else (None, where or ",")
    codes = frozenset(c for code_list in know.contract.code_lists.values() for c in code_list)
    return Draft(layout, len(section.records), columns, base, repeats, sheet, delimiter, know.section, codes)


_SHOWN = re.compile(r"^(?:\d{1,3}|[A-Z])(?: (?:\d{1,3}|[A-Z]))*$")  # small numbers, one-letter codes, selections


def shown_answers(answers: list[str], codes: set[str]) -> str:
    """A few answers of an unmatched column, only when they cannot be personal data: codes of the contract, numbers
    of up to three digits or one-letter codes (scales, Y/N, selections), each given at least twice; otherwise how
    many distinct answers there are."""
    counts = Counter(answers)
    distinct = list(counts)
    if not distinct:
        return "no answers"
    if all((_SHOWN.match(a) or a in codes) and counts[a] >= 2 for a in distinct):
        return "answers: " + ", ".join(_q(a) for a in distinct[:4]) + (" ..." if len(distinct) > 4 else "")
    return f"{len(distinct)} distinct answers in {len(answers)} (not shown: they may be personal)"


# ------------------------------------------------------------------------------------------------ writing
def _glob_literal(header: str) -> str:
    """A header as an fnmatch pattern that matches only itself (``[`` ``]`` ``*`` ``?`` escaped)."""
    return re.sub(r"([\[\]*?])", r"[\1]", header)


def _q(value: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes, and \\u / \\U escapes for what YAML may not hold raw."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(
        c if c.isprintable() else (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}") for c in text
    )


def render(d: Draft, *, instrument: str, language: str, source: str) -> str:
    """The draft codebook as commented YAML."""
    mapped = [c for c in d.columns if c.target]
    unmatched = [c for c in d.columns if not c.target]
    lines = [
        f"# DRAFT codebook written by `ss4gl surveys codebook init` from {source}",
        f"# ({d.layout}, {d.records} records, {len(d.columns)} columns: {len(mapped)} matched, {len(unmatched)} not).",
        "# Check every mapping (each says why it was made), map the columns listed under `ignore` that hold",
        '# contract fields (move the line to `columns` as  "HEADER": field  or  field[code]), fix the labels,',
        "# then:  ss4gl surveys check FILE --cluster CLUSTER --codebook THIS_FILE.yml",
        f"id: {_q(f'{instrument}.draft.{language}')}",
        "version: 1",
        f"instrument: {_q(instrument)}",
        f"language: {_q(language)}",
        f"layout: {d.layout}",
    ]
    if d.layout == "csv":
        lines += ["encoding: auto", f"delimiter: {_q(d.delimiter)}"]
    lines += ["sections:", f"  {d.section}:"]
    if d.sheet is not None:
        lines.append(f"    sheet: {_q(d.sheet)}")
    lines += [f"    multi_separator: {_q(d.multi_separator)}", "    columns:"]
    for c in mapped:
        t = c.target
        target = f"{t.field}[{t.code}]" if t.code else t.field
        value = f"{{field: {target}, derive: {t.derive}}}" if t.derive else target
        lines.append(f"      {_q(c.header)}: {value}  # {c.why}")
    if not mapped:
        lines[-1] = "    columns: {}  # no column matched: map them from the list under ignore"
    lines.append("# Not matched: neither mapped nor warned about until a person maps them.")
    lines.append("ignore:" if unmatched else "ignore: []")
    for c in unmatched:
        about = c.note or shown_answers(c.answers, d.codes)
        lines.append(f"  - {_q(_glob_literal(c.header))}  # {about}")
    labels = dict(d.base.labels) if d.base else {}
    if labels:
        lines.append(f"# Answer labels copied from codebook {d.base.id} (the one whose headers matched most).")
        dumped = yaml.safe_dump({"labels": labels}, allow_unicode=True, sort_keys=False, width=110)
        lines += dumped.rstrip("\n").splitlines()
    else:
        lines += ["labels:", '  boolean: {"Yes": true, "No": false}', "  missing: []", "  codes: {}"]
    return "\n".join(lines) + "\n"


def load_draft(path: Path) -> Codebook:
    """A codebook file given on the command line (a draft or any other); ``extends`` resolves against ours."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DraftError(f"{path}: cannot read the codebook ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(raw, dict) or not {"id", "instrument", "layout", "sections"} <= set(raw):
        raise DraftError(f"{path}: not a codebook (needs id, instrument, layout, sections)")
    if "extends" in raw and not isinstance(raw["extends"], str):
        raise DraftError(f"{path}: extends names one codebook id")
    try:
        raw = resolve_extends(raw, raw_codebooks())
    except (KeyError, ValueError):
        raise DraftError(f"{path}: extends unknown codebook {raw['extends']!r} (or a cycle)") from None
    sections = raw["sections"]
    if not isinstance(sections, dict) or not all(
        isinstance(s, dict) and isinstance(s.get("columns", {}), dict) for s in sections.values()
    ):
        raise DraftError(f"{path}: sections must map each section name to its columns (header: field)")
    try:
        return _codebook(raw, path)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise DraftError(f"{path}: invalid codebook ({' '.join(str(exc).split())[:160]})") from None
