"""Write ``expectations/survey_<table>.json`` from the survey data contract (``ingest/surveys/contract``).

The suites are generated once and committed (reviewed like code); ``tests/validation`` fails when they drift
from the contract. Regenerate with ``python -m tools.survey_suites``. The product reads the committed suites
(``ingest.validation``); this generator is a development tool, not part of the product.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.config import EXPECTATIONS_DIR
from ingest.validation.suites import SURVEY_CONTRACT_DIR

INTEGER = ["int64", "Int64", "int32", "Int32", "int16", "Int16", "int8", "Int8", "float64", "Float64", "int"]
DECIMAL = INTEGER + ["float32", "Float32", "float"]
BOOLEAN = ["bool", "boolean"]
STRING = ["str", "string"]
TYPE_LISTS = {
    "integer": INTEGER,
    "likert": INTEGER,
    "decimal": DECIMAL,
    "boolean": BOOLEAN,
    "string": STRING,
    "code": STRING,
    "text": STRING,
    "date": STRING + ["datetime64[ns]", "datetime64[us]"],
}
# Kept in step with ingest/surveys/privacy.py (EMAIL_RE, PHONE_RE); a test compares them.
EMAIL_REGEX = r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+"
PHONE_REGEX = r"(?<![\w.])(?:(?:\+|00)\d{1,3}[\s./-]?(?:\(0\)[\s]?)?\d{1,4}|0\d{1,4})(?:[\s./-]?\d{2,4}){2,5}(?![\w])"
COMMON = {  # leading columns of every survey raw table
    "file_sha256": {"type": "string", "required": True},
    "cluster": {"type": "code", "codes": "clusters", "required": True},
    "wave": {"type": "integer", "required": True, "min": 2000, "max": 2100},
}
EXTRA = {
    "source_row": {"type": "integer", "required": True, "min": 0},
    "respondent_pid": {"type": "string", "required": True},
    "formula_like": {"type": "boolean"},
}


def _codes(codes: Any) -> str:
    return "$code_list:" + "+".join(codes if isinstance(codes, list) else [codes])


def _table_fields(table: dict[str, Any], section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Column → field spec of one raw table, following its shape (row, per_code, explode)."""
    fields = section.get("fields", {})
    shape = table.get("shape", "row")
    out: dict[str, dict[str, Any]] = dict(COMMON)
    for col in table["columns"]:
        spec = dict(fields.get(col) or EXTRA.get(col) or {})
        if shape == "per_code" and col == table.get("code_column"):
            spec = {"type": "code", "codes": table["codes"], "required": True}
        elif shape == "per_code" and spec.get("type") == "multi_code":
            spec = {"type": "boolean"}  # one flag per code
        elif shape == "per_code" and spec.get("per"):
            spec = {k: v for k, v in spec.items() if k != "per"}
        elif shape == "explode" and col == table.get("code_column"):
            codes = [fields[f].get("codes") for f in table.get("fields", {})]
            flat = sorted({c for cs in codes for c in (cs if isinstance(cs, list) else [cs])})
            spec = {"type": "code", "codes": flat, "required": True}
        elif shape == "explode" and col == table.get("direction_column"):
            spec = {"type": "code", "values": [v for v in table["fields"].values() if v], "required": True}
        out[col] = spec
    return out


def _key(table_name: str, table: dict[str, Any], section: dict[str, Any]) -> list[str]:
    cols = table["columns"]
    if "respondent_pid" in cols:
        extra = [c for c in (table.get("code_column"), table.get("direction_column")) if c]
        return ["cluster", "wave", "respondent_pid", *sorted(extra, key=cols.index)]
    if "source_row" in cols:
        return ["cluster", "wave", "source_row"]
    return ["cluster", "wave"]


def suite_for(table_name: str, table: dict[str, Any], section: dict[str, Any], instrument: str) -> dict[str, Any]:
    """The suite of one raw survey table."""
    fields = _table_fields(table, section)
    exps: list[dict[str, Any]] = []

    def add(rule: str, type_: str, kwargs: dict, expected: str, **extra: Any) -> None:
        meta = {"severity": "critical", "expected": expected, **extra}
        exps.append({"id": rule, "type": type_, "kwargs": kwargs, "meta": meta})

    add(
        "columns_present",
        "expect_table_columns_to_match_set",
        {"column_set": list(fields), "exact_match": False},
        "every contract column is present",
    )
    for col, spec in fields.items():
        if spec.get("type") in TYPE_LISTS:
            add(
                "column_typed",
                "expect_column_dtype_in",
                {"column": col, "type_list": TYPE_LISTS[spec["type"]]},
                f"{col} of contract type {spec['type']}",
            )
    for col, spec in fields.items():
        if spec.get("required"):
            add(
                "required_not_null",
                "expect_column_values_to_not_be_null",
                {"column": col},
                f"{col} is required",
            )
    for col, spec in fields.items():
        if spec.get("type") == "likert":
            add(
                "likert_1_to_5",
                "expect_column_values_to_be_in_set",
                {"column": col, "value_set": [1, 2, 3, 4, 5]},
                "Likert 1-5 or missing (never 0)",
            )
    for col, spec in fields.items():
        if spec.get("codes") or spec.get("values"):
            value_set = _codes(spec["codes"]) if spec.get("codes") else spec["values"]
            add(
                "code_in_list",
                "expect_column_values_to_be_in_set",
                {"column": col, "value_set": value_set},
                f"{col} coded from {spec.get('codes') or spec.get('values')}",
            )
    for col, spec in fields.items():
        if ("min" in spec or "max" in spec) and spec.get("type") != "likert":
            kwargs = {"column": col, "min_value": spec.get("min"), "max_value": spec.get("max")}
            add(
                "within_contract_range",
                "expect_column_values_to_be_between",
                kwargs,
                f"{col} within [{spec.get('min')}, {spec.get('max')}]",
            )
    key = _key(table_name, table, section)
    add(
        "one_response_per_key",
        "expect_compound_columns_to_be_unique",
        {"column_list": key},
        "one row per "
        + " + ".join(key)
        + (" (one response per pseudonymised respondent per wave)" if "respondent_pid" in key else ""),
    )
    for rule, regex, what in (
        ("no_email", EMAIL_REGEX, "e-mail address"),
        ("no_phone", PHONE_REGEX, "phone number"),
    ):
        exps.append(
            {
                "id": rule,
                "type": "expect_column_values_to_not_match_regex",
                "for_each": "$string_columns",
                "kwargs": {"column": "$column", "regex": regex},
                "meta": {
                    "severity": "critical",
                    "expected": f"no {what} left in any text column",
                    "mask_samples": True,
                },
            }
        )
    return {
        "suite": table_name,
        "format": "ss4gl-suite/1",
        "generated_from": f"ingest/surveys/contract/{instrument}.yml" + " (python -m tools.survey_suites)",
        "description": f"Raw survey table raw.{table_name} ({instrument}, section {table.get('from')}).",
        "row_label": [c for c in ["cluster", "wave", "respondent_pid", "source_row"] if c in fields],
        "resolution": {
            "$code_list:<a>+<b>": "union of named code lists: context code_lists, else contract codes.yml, "
            "catalogue cluster ids (clusters), reference nuts3.csv (restricted to the context "
            "cluster's regions) and nace_rev2.csv",
            "$string_columns": "every str/string/object column of the batch frame",
            "meta.mask_samples": "bad values are redacted before they reach logs, audit tables or Data Docs",
        },
        "expectations": exps,
    }


def generate(contract_dir: Path = SURVEY_CONTRACT_DIR) -> dict[str, dict[str, Any]]:
    """Suite name → suite, for every raw table of every instrument contract."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for path in sorted(contract_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "tables" not in doc:
            continue
        for name, table in doc["tables"].items():
            out[name] = suite_for(name, table, doc["sections"][table["from"]], doc.get("instrument", path.stem))
    return out


def render(suite: dict[str, Any]) -> str:
    return json.dumps(suite, indent=2, ensure_ascii=False) + "\n"


def main(directory: Path = EXPECTATIONS_DIR) -> None:
    for name, suite in generate().items():
        (directory / f"{name}.json").write_text(render(suite), encoding="utf-8")
        print(f"wrote {directory / name}.json ({len(suite['expectations'])} entries)")


if __name__ == "__main__":
    main()
