"""Tables: contract records -> the contract's canonical raw tables (pandas, with the warehouse's column types)."""

from __future__ import annotations

import pandas as pd

from ingest.surveys.parsing.state import ParseState
from ingest.surveys.spec import Contract, SectionSpec

DTYPES = {
    "string": "string",
    "text": "string",
    "code": "string",
    "date": "string",
    "integer": "Int64",
    "likert": "Int64",
    "decimal": "Float64",
    "boolean": "boolean",
}
EXTRA_DTYPES = {
    "file_sha256": "string",
    "cluster": "string",
    "wave": "Int64",
    "source_row": "Int64",
    "respondent_pid": "string",
    "formula_like": "boolean",
    "service": "string",
    "sector": "string",
    "direction": "string",
    "code": "string",
    "used_12m": "boolean",
    "priority_top3": "boolean",
}


def _dtype(column: str, spec: SectionSpec) -> str:
    if column in EXTRA_DTYPES:
        return EXTRA_DTYPES[column]
    f = spec.fields.get(column)
    return DTYPES[f.type] if f else "string"


def build_tables(
    contract: Contract, recs: dict[str, list[dict]], state: ParseState, sha: str, wave: int | None
) -> dict[str, pd.DataFrame]:
    """One DataFrame per contract table, from the records of its section, shaped as the table says (``row``: a
    row per record; ``per_code``: a row per record and code of the table's code list; ``explode``: a row per
    record and code chosen in each listed field); ``file_sha256``, ``cluster`` and ``wave`` lead the columns."""
    out = {}
    for name, t in contract.tables.items():
        spec = contract.sections[t["from"]]
        cols = list(t["columns"])
        rows: list[dict] = []
        for r in recs.get(t["from"], []):
            if t["shape"] == "row":
                rows.append({c: r.get(c) for c in cols})
            elif t["shape"] == "per_code":
                for code in contract.code_lists[t["codes"]]:
                    row = {}
                    for c in cols:
                        f = spec.fields.get(c)
                        if c == t["code_column"]:
                            row[c] = code
                        elif f is not None and f.type == "multi_code":
                            row[c] = None if r.get(c) is None else code in r[c]
                        elif f is not None and f.per:
                            row[c] = (r.get(c) or {}).get(code)
                        else:
                            row[c] = r.get(c)
                    rows.append(row)
            elif t["shape"] == "explode":
                for fld, direction in t["fields"].items():
                    for code in r.get(fld) or []:
                        row = {c: r.get(c) for c in cols}
                        row[t["code_column"]] = code
                        if t.get("direction_column"):
                            row[t["direction_column"]] = direction
                        rows.append(row)
            else:
                raise ValueError(f"table {name}: unknown shape {t['shape']}")
        df = pd.DataFrame(rows, columns=cols)
        df.insert(0, "wave", wave)
        df.insert(0, "cluster", state.cluster)
        df.insert(0, "file_sha256", sha)
        out[name] = df.astype({c: _dtype(c, spec) for c in df.columns})
    return out
