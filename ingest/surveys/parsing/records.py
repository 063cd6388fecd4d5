"""Records: a raw section -> contract records (columns mapped by the codebook, cells converted, personal data
dropped, pseudonymised or scrubbed), then the file-wide checks on them (one wave, the inbox folder's cluster)."""

from __future__ import annotations

import re
from typing import Any

from ingest.surveys.parsing.raw import RawSection, is_blank
from ingest.surveys.parsing.state import ParseState
from ingest.surveys.parsing.values import as_text, convert, is_formula_like, multi_codes, option_flag
from ingest.surveys.privacy import known, pseudonymise, scrub
from ingest.surveys.spec import CodebookSection, Contract, SectionSpec, Target, norm


def section_records(spec: SectionSpec, cbs: CodebookSection, raw: RawSection, state: ParseState) -> list[dict]:
    """One record per raw record: columns mapped onto the section's fields by the codebook (a column it does not
    know is a warning, two columns for one field an error), cells converted (fields marked ``personal: drop`` left
    out, free text not marked personal scrubbed), required columns and values checked. Each record also holds
    ``source_row``, ``formula_like`` and ``_headers`` (field -> the column it came from)."""
    pr = state.pr
    mapping: dict[str, Target] = {}
    seen: dict[tuple[str, str | None], str] = {}
    for h in raw.headers:
        t = cbs.columns.get(norm(h))
        if t is None or t.field not in spec.fields:
            if not state.cb.ignored(h):
                pr.warning(
                    "unknown_column",
                    f"column not in codebook {state.cb.id}; ignored",
                    row=raw.header_rows.get(h),
                    column=h,
                    expected=f"a column of {state.cb.id}",
                    found=known(h),
                )
            continue
        if (t.field, t.code) in seen:
            pr.error(
                "duplicate_column",
                f"two columns map to {t.field}",
                row=raw.header_rows.get(h),
                column=h,
                expected="one column per field",
                found=known(f"{seen[(t.field, t.code)]!r} and {h!r}"),
            )
            continue
        seen[(t.field, t.code)] = h
        mapping[h] = t
    covered = {t.field for t in mapping.values()}
    header_of = {t.field: h for h, t in mapping.items()}
    expected_header = {t.field: cbs.headers[n] for n, t in cbs.columns.items()}
    head_row = min(raw.header_rows.values(), default=1)
    for f in spec.fields.values():
        if f.required and f.name not in covered:
            what = "row label" if spec.kind == "keyvalue" else "column"
            pr.error(
                "missing_required_column",
                f"required {what} for {spec.name}.{f.name} is missing",
                row=head_row,
                column=expected_header.get(f.name, f.name),
                expected=expected_header.get(f.name, f.name),
                found=known("absent"),
            )
    records = []
    for rec in raw.records:
        out: dict[str, Any] = {"source_row": rec.row, "formula_like": False}
        for h, t in mapping.items():
            f = spec.fields[t.field]
            if f.personal == "drop":
                continue
            value, row = rec.cells.get(h, (None, rec.row))
            if t.code is not None:
                if f.type == "multi_code":
                    lst = out.setdefault(f.name, [])
                    if option_flag(value, state, row, h) and t.code not in lst:
                        lst.append(t.code)
                else:
                    out.setdefault(f.name, {})[t.code] = convert(value, f, state, row, h)
                continue
            if t.derive == "year":
                m = re.match(r"^\s*(\d{4})", as_text(value)) if not is_blank(value) else None
                if value is not None and not is_blank(value) and not m:
                    pr.error(
                        "invalid_value",
                        f"cannot read a year for {f.name}",
                        row=row,
                        column=h,
                        expected="a date like 2025-03-14",
                        found=value,
                    )
                out[f.name] = int(m[1]) if m else None
                continue
            if f.type == "multi_code":
                out[f.name] = multi_codes(value, f, state, row, h, cbs.multi_separator)
                if f.max_items and out[f.name] and len(out[f.name]) > f.max_items:
                    pr.error(
                        "too_many_items",
                        f"{f.name} allows at most {f.max_items} choices",
                        row=row,
                        column=h,
                        expected=f"<= {f.max_items} items",
                        found=len(out[f.name]),
                    )
                continue
            if f.type in ("text", "string") and is_formula_like(value) and f.personal is None:
                out["formula_like"] = True
                pr.warning(
                    "formula_like",
                    "cell starts like a spreadsheet formula; stored verbatim as text",
                    row=row,
                    column=h,
                    expected="plain text",
                    found=known(f"text of {len(value)} characters starting with {value[:1]!r}"),
                )
            v = convert(value, f, state, row, h)
            if isinstance(v, str) and f.personal is None and f.type in ("text", "string"):
                v = scrub(v)
            out[f.name] = v
        for f in spec.fields.values():
            if f.required and f.name in covered and out.get(f.name) in (None, [], {}):
                h = header_of[f.name]
                value, row = rec.cells.get(h, (None, rec.row))
                if is_blank(value):
                    pr.error(
                        "missing_value",
                        f"required {spec.name}.{f.name} is empty",
                        row=row,
                        column=h,
                        expected="a value",
                        found="",
                    )
        out["_headers"] = header_of
        records.append(out)
    return records


def pseudonymise_section(spec: SectionSpec, records: list[dict], state: ParseState) -> None:
    """Key fields marked ``personal: pseudonymise`` -> ``<name without _id>_pid`` (the raw id is removed); a
    pseudonym seen twice is a duplicate_respondent error."""
    for name in spec.key:
        f = spec.fields[name]
        if f.personal != "pseudonymise":
            continue
        pid_col = name.removesuffix("_id") + "_pid"
        first: dict[str, int] = {}
        for r in records:
            raw_id = r.pop(name, None)
            if raw_id is None:
                r[pid_col] = None
                continue
            pid = pseudonymise(f"{state.cluster}|{state.instrument}|{raw_id}", state.key)
            r[pid_col] = pid
            if pid in first:
                state.pr.error(
                    "duplicate_respondent",
                    "respondent appears twice in the file",
                    row=r["source_row"],
                    column=r["_headers"].get(name),
                    expected=f"unique (first in row {first[pid]})",
                    found=known(f"pseudonym {pid[:12]}"),
                )
            else:
                first[pid] = r["source_row"]


def file_wave(contract: Contract, recs: dict[str, list[dict]], state: ParseState) -> int | None:
    """The file's wave (the first wave value found); a different wave in another row is a mixed_waves error."""
    waves: list[tuple[int, int, str]] = []
    for sname, spec in contract.sections.items():
        for f in spec.fields.values():
            if f.name == "wave" or f.wave:
                waves += [
                    (r[f.name], r["source_row"], r["_headers"].get(f.name, f.name))
                    for r in recs.get(sname, [])
                    if r.get(f.name) is not None
                ]
    if not waves:
        return None
    first = waves[0][0]
    for w, row, col in waves:
        if w != first:
            state.pr.error(
                "mixed_waves",
                "one file must hold one wave",
                row=row,
                column=col,
                expected=str(first),
                found=w,
            )
            break
    return first


def check_cluster(recs: dict[str, list[dict]], state: ParseState) -> None:
    """A row whose cluster is not the inbox folder's is a cluster_mismatch error."""
    for rows in recs.values():
        for r in rows:
            c = r.get("cluster")
            if c is not None and c != state.cluster:
                state.pr.error(
                    "cluster_mismatch",
                    "row belongs to another cluster than the inbox folder",
                    row=r["source_row"],
                    column=r["_headers"].get("cluster"),
                    expected=state.cluster,
                    found=known(c),  # a code of the clusters list (validated by values.convert)
                )
