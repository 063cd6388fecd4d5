"""Long CSV reading: rows ``section,item,field,value`` (already read by :mod:`.read_csv`) -> raw sections."""

from __future__ import annotations

from typing import Any

from ingest.surveys.parsing.raw import RawRecord, RawSection, table_section
from ingest.surveys.problems import Problems
from ingest.surveys.spec import Codebook, norm


def long_sections(rows: list[tuple[int, list[Any]]], cb: Codebook, pr: Problems) -> dict[str, RawSection]:
    """Long CSV ``section,item,field,value`` -> one raw section per contract section."""
    table = table_section(rows)
    idx = {norm(h): h for h in table.headers}
    cols = {k: idx.get(norm(v)) for k, v in cb.long_columns.items()}
    if any(cols[k] is None for k in ("section", "field", "value")):
        return {}
    by_label = {norm(s.label or s.name): s for s in cb.sections.values()}
    out: dict[str, RawSection] = {}
    items: dict[tuple[str, str], RawRecord] = {}
    for rec in table.records:
        label = rec.cells[cols["section"]][0]
        s = by_label.get(norm(label or ""))
        if s is None:
            pr.warning(
                "unknown_section",
                "rows of an unknown section are ignored",
                row=rec.row,
                column=cols["section"],
                expected=", ".join(sorted(by_label)),
                found=label,
            )
            continue
        fld = str(rec.cells[cols["field"]][0] or "")
        value = rec.cells[cols["value"]][0]
        item = str(rec.cells[cols["item"]][0] or "") if cols.get("item") else ""
        sec = out.setdefault(s.name, RawSection([], {}, []))
        key = (s.name, "" if s.label_column or not item else item)
        r = items.get(key)
        if r is None:
            r = items[key] = RawRecord(rec.row, {})
            sec.records.append(r)
        if fld not in sec.header_rows:
            sec.headers.append(fld)
            sec.header_rows[fld] = rec.row
        r.cells[fld] = (value, rec.row)
    return out
