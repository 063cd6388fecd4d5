"""Parse one survey export into canonical raw tables, driven by the contract and the codebooks.

Pipeline: size/emptiness checks -> layout sniffing (xlsx / OLE / json / csv) -> read into raw sections ->
pick the codebook whose headers match best (ties: fewest errors, then the cluster's language) -> map columns
onto contract fields, convert answer labels, validate codes -> pseudonymise, drop and scrub personal data ->
reshape into the contract's tables. Any error quarantines the whole file (``tables`` is then empty).

This module is the file-level driver (:func:`parse_file`, :class:`ParseResult`); the stages live in
:mod:`ingest.surveys.parsing` (readers per format, values, records, tables), which never import this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from ingest.config import Catalogue, load_catalogue
from ingest.surveys.parsing.raw import HEAD_CHARS, FileRejected, Limits, RawSection
from ingest.surveys.parsing.read_csv import check_delimiter
from ingest.surveys.parsing.read_json import json_records
from ingest.surveys.parsing.read_xlsx import read_workbook
from ingest.surveys.parsing.readers import quiet_sections, read_sections, sniff_layout
from ingest.surveys.parsing.records import check_cluster, file_wave, pseudonymise_section, section_records
from ingest.surveys.parsing.state import ParseState
from ingest.surveys.parsing.tables import build_tables
from ingest.surveys.privacy import known, scrub
from ingest.surveys.problems import Problem, Problems
from ingest.surveys.spec import Codebook, Contract, load_codebooks, load_contract, norm


@dataclass
class ParseResult:
    """Outcome of parsing one file. ``tables`` is empty unless ``ok``."""

    file: str
    cluster: str
    instrument: str
    file_sha256: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    codebook: str | None = None
    wave: int | None = None

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.tables.items()}


def _run(
    data: bytes, cb: Codebook, base: ParseState, sheets: dict | None, sha: str
) -> tuple[ParseState, dict, int | None, bool]:
    """Full pipeline with one codebook; returns its parse state (problems), tables, wave, and whether
    rejected."""
    state = ParseState(
        base.file,
        base.cluster,
        base.instrument,
        base.catalogue,
        base.contract,
        cb,
        base.key,
        Problems(base.file),
    )
    try:
        if cb.family == "csv":
            check_delimiter(data, cb, state.pr)
        sections = read_sections(data, cb, state.pr, sheets, Limits.of(base.catalogue))
        if all(not s.records for s in sections.values()):
            state.pr.error(
                "header_only",
                "file has a header but no data rows",
                row=2,
                column="-",
                expected="at least one data row",
                found=known("no rows"),
            )
            raise FileRejected
        recs: dict[str, list[dict]] = {}
        for sname, spec in state.contract.sections.items():
            raw = sections.get(sname)
            cbs = cb.sections.get(sname)
            if raw is None or cbs is None:
                if not spec.optional:
                    where = cbs.sheet or cbs.label if cbs else sname
                    state.pr.error(
                        "missing_section",
                        f"section {sname} is missing",
                        row=None,
                        column=where,
                        expected=f"sheet/section {where!r}",
                        found=known("absent"),
                    )
                continue
            recs[sname] = section_records(spec, cbs, raw, state)
            pseudonymise_section(spec, recs[sname], state)
        check_cluster(recs, state)
        wave = file_wave(state.contract, recs, state)
        tables = build_tables(state.contract, recs, state, sha, wave)
        return state, tables, wave, False
    except FileRejected:
        return state, {}, None, True


def _header_score(sections: dict[str, RawSection], cb: Codebook, contract: Contract) -> tuple[float, float]:
    """How well a codebook reads the file: (share of the required fields of required sections it maps, share of
    the headers it knows, the headers it ignores left out)."""
    req = hit = recognised = total = 0
    for sname, spec in contract.sections.items():
        raw, cbs = sections.get(sname), cb.sections.get(sname)
        fields = set()
        if raw and cbs:
            for h in raw.headers:
                total += 1
                t = cbs.columns.get(norm(h))
                if t is not None:
                    recognised += 1
                    fields.add(t.field)
                elif cb.ignored(h):
                    total -= 1
        if not spec.optional:
            for f in spec.fields.values():
                if f.required:
                    req += 1
                    hit += f.name in fields
    return (hit / req if req else 0.0, recognised / total if total else 0.0)


def parse_file(
    data: bytes,
    filename: str,
    cluster: str,
    instrument: str,
    *,
    key: bytes,
    max_bytes: int | None = None,
    catalogue: Catalogue | None = None,
    codebooks: tuple[Codebook, ...] | None = None,
) -> ParseResult:
    """Parse one survey export (bytes as received) into canonical raw tables plus problems."""
    catalogue = catalogue or load_catalogue()
    sha = hashlib.sha256(data).hexdigest()
    pr = Problems(filename)
    result = ParseResult(filename, cluster, instrument, sha, problems=pr)

    instruments = catalogue.sources.get("surveys", {}).get("instruments", [])
    try:
        contract = load_contract(instrument)
    except KeyError:
        contract = None
    if contract is None or instrument not in instruments:
        pr.error(
            "unknown_instrument",
            "unknown survey instrument",
            expected=" / ".join(instruments),
            found=known(instrument),  # an inbox folder name
        )
        return result
    if cluster not in {c.id for c in catalogue.clusters}:
        pr.error(
            "unknown_cluster",
            "unknown cluster (not in catalogue.yml)",
            expected=" / ".join(c.id for c in catalogue.clusters),
            found=known(cluster),  # an inbox folder name
        )
        return result
    limit = max_bytes if max_bytes is not None else int(catalogue.sources["surveys"]["max_file_bytes"])
    if len(data) > limit:
        pr.error(
            "file_too_large",
            "file exceeds the configured size limit",
            expected=f"<= {limit} bytes",
            found=known(f"{len(data)} bytes"),
        )
        return result
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n"):
        pr.error(
            "empty_file",
            "file is empty",
            row=1,
            column="-",
            expected="a header and data rows",
            found=known(f"{len(data)} bytes"),
        )
        return result

    limits = Limits.of(catalogue)
    layout = sniff_layout(data, filename)
    if layout == "ole":
        pr.error(
            "encrypted_xlsx",
            "file is an OLE compound document: a password-protected XLSX or a legacy "
            ".xls; save it unprotected as .xlsx",
            expected="XLSX (zip)",
            found=known("OLE/CFB (D0 CF 11 E0)"),
        )
        return result
    candidates = [cb for cb in (codebooks or load_codebooks()) if cb.instrument == instrument and cb.family == layout]
    if not candidates:
        pr.error(
            "no_codebook",
            f"no codebook for {instrument} in layout {layout}",
            expected="a codebook",
            found=known(layout),
        )
        return result
    sheets = None
    if layout == "json":
        try:
            if not json_records(data, candidates[0], pr, limits).records:
                pr.error(
                    "header_only",
                    "JSON holds no records",
                    row=1,
                    column="-",
                    expected="at least one record",
                    found=known("0 records"),
                )
        except FileRejected:
            pass
        if pr.has_errors:
            return result
    if layout == "xlsx":
        try:
            sheets = read_workbook(data, pr, limits)
        except FileRejected:
            return result
        if not any(rows for rows in sheets.values()):
            pr.error(
                "empty_file",
                "workbook has no cells",
                row=1,
                column="-",
                expected="a header row",
                found=known("empty workbook"),
            )
            return result

    scored = [(_header_score(quiet_sections(data, cb, sheets, limits), cb, contract), cb) for cb in candidates]
    best = max(s for s, _ in scored)
    if best[1] == 0.0:
        hint = ""
        if layout == "csv":
            first = data[:HEAD_CHARS].decode("latin-1").lstrip("\ufeffï»¿").splitlines()[0]
            hint = f"; header starts {scrub(first[:60])!r}"
        pr.error(
            "no_codebook",
            f"header matches no {instrument} codebook ({', '.join(c.id for c in candidates)}){hint}",
            row=1,
            column="-",
            expected="a known header layout (add a codebook)",
            found=known(f"{layout} file"),
        )
        return result
    tied = [cb for s, cb in scored if s == best]
    lang = catalogue.cluster(cluster).language
    base = ParseState(filename, cluster, instrument, catalogue, contract, tied[0], key, pr)
    runs = [_run(data, cb, base, sheets, sha) for cb in tied]
    state, tables, wave, _ = min(
        runs, key=lambda r: (r[3], sum(p.severity == "error" for p in r[0].pr), r[0].cb.language != lang)
    )
    pr.extend(state.pr)
    result.codebook = state.cb.id
    result.wave = wave
    result.tables = tables if not pr.has_errors else {}
    return result
