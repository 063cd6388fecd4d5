"""Suite files (``expectations/*.json``) and their per-batch resolution into concrete expectations.

Pure Python (no GX import): a suite entry is a GX Core expectation type + kwargs + ``meta.severity``, with
placeholders (``$dimensions``, ``$context.obs_count``, ``$code_list:services`` ...), ``for_each`` expansion
and a ``when`` row condition. :func:`resolve` turns a suite into :class:`Check` objects for one frame; the
GX side (``ingest.validation._gx``) only instantiates them. The placeholders are documented in each file's
``resolution`` block.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import EXPECTATIONS_DIR, PACKAGE_DIR

if TYPE_CHECKING:
    import pandas as pd

SEVERITIES = ("critical", "warning")
# Columns of the decoded Eurostat long table (and of its raw rows) that are not dimensions.
EUROSTAT_NON_DIMENSIONS = frozenset(
    {
        "dataset",
        "time",
        "value",
        "obs_status",
        "conf_status",
        "source_updated_at",
        "series_key",
        "dims",
        "batch_id",
    }
)
SURVEY_CONTRACT_DIR = PACKAGE_DIR / "surveys" / "contract"
SURVEY_REFERENCE_DIR = PACKAGE_DIR / "surveys" / "reference"


class SuiteError(ValueError):
    """A suite file is malformed or names an unknown placeholder."""


class Skip(Exception):  # noqa: N818 - control flow, not an error
    """An entry does not apply to this batch (missing column or context value)."""


@dataclass(frozen=True)
class Check:
    """One concrete expectation for one batch."""

    rule: str
    type: str
    kwargs: dict[str, Any]
    severity: str
    column: str | None
    expected: str
    condition: dict[str, Any] | None = None  # {"null": [...]} or {"column": c, "in"|"not_in": [...]}
    mask_samples: bool = False

    @property
    def label(self) -> str:
        """Readable name: rule, column and row condition."""
        where = f" where {describe_condition(self.condition)}" if self.condition else ""
        col = f"[{self.column}]" if self.column else ""
        return f"{self.rule}{col}{where}"


@dataclass
class Resolution:
    checks: list[Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def describe_condition(cond: dict[str, Any] | None) -> str:
    if not cond:
        return ""
    if "null" in cond:
        return " and ".join(f"{c} is null" for c in cond["null"])
    op = "in" if "in" in cond else "not in"
    values = cond.get("in", cond.get("not_in", []))
    shown = ", ".join(map(str, values[:6])) + (", ..." if len(values) > 6 else "")
    return f"{cond['column']} {op} ({shown})"


@cache
def load_suite(name: str, directory: Path = EXPECTATIONS_DIR) -> dict[str, Any]:
    """Read and check ``<directory>/<name>.json``."""
    path = Path(directory) / f"{name}.json"
    if not path.is_file() and name.startswith("survey_survey_"):  # callers prefixing a table name twice
        return load_suite(name[len("survey_") :], directory)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(directory).glob("*.json")))
        raise SuiteError(f"no suite {name!r} in {directory} (known: {known})")
    spec = json.loads(path.read_text(encoding="utf-8"))
    if spec.get("suite") != name:
        raise SuiteError(f"{path.name}: 'suite' must be {name!r}")
    for i, entry in enumerate(spec.get("expectations", [])):
        where = f"{path.name} expectation {i} ({entry.get('id')})"
        if not entry.get("id") or not str(entry.get("type", "")).startswith("expect_"):
            raise SuiteError(f"{where}: needs 'id' and an expect_* 'type'")
        if (entry.get("meta") or {}).get("severity") not in SEVERITIES:
            raise SuiteError(f"{where}: meta.severity must be one of {SEVERITIES}")
    return spec


def suite_names(directory: Path = EXPECTATIONS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.json"))


# ------------------------------------------------------------------------------------------ reference data
@cache
def geo_regex(directory: Path = EXPECTATIONS_DIR) -> str:
    ref = json.loads((Path(directory) / "reference" / "geo.json").read_text(encoding="utf-8"))
    countries = "|".join(sorted(ref["countries"]))
    aggregates = "|".join(sorted((re.escape(a) for a in ref["aggregates"]), key=lambda a: (-len(a), a)))
    return f"^(?:(?:{countries})[A-Z0-9]{{0,3}}|{aggregates})$"


@cache
def contract_code_lists() -> dict[str, list[str]]:
    """Named code lists of the survey contract, the catalogue's cluster ids and the reference CSVs."""
    import yaml

    from ingest.config import load_catalogue

    lists: dict[str, list[str]] = {}
    codes_file = SURVEY_CONTRACT_DIR / "codes.yml"
    if codes_file.is_file():
        raw = yaml.safe_load(codes_file.read_text(encoding="utf-8")) or {}
        lists.update({k: [str(v) for v in vals] for k, vals in (raw.get("code_lists") or {}).items()})
    lists["clusters"] = [c.id for c in load_catalogue().clusters]
    for name, filename in (("nuts3", "nuts3.csv"), ("nace", "nace_rev2.csv")):
        path = SURVEY_REFERENCE_DIR / filename
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                lists[name] = [row["code"] for row in csv.DictReader(fh)]
    return lists


@cache
def uses_cluster_context(name: str) -> bool:
    """Whether a suite resolves differently per cluster (a cluster-restricted code list such as ``nuts3``).

    Batches of the other suites need no cluster in their context, so files of several clusters are validated
    together (one GX validation per suite instead of one per suite and cluster).
    """
    text = json.dumps(load_suite(name)["expectations"])
    return "$context.cluster" in text or re.search(r"\$code_list:[^\"]*\bnuts3\b", text) is not None


def named_code_list(name: str, context: dict[str, Any]) -> list[str]:
    """A code list by name: the context's ``code_lists`` first, then the contract / reference lists.

    ``a+b`` is the union of two lists; ``nuts3`` is restricted to the context cluster's regions (each in its
    declared NUTS version).
    """
    out: list[str] = []
    for part in name.split("+"):
        given = (context.get("code_lists") or {}).get(part)
        if given is not None:
            out += [str(v) for v in given]
            continue
        lists = contract_code_lists()
        if part not in lists:
            raise SuiteError(f"unknown code list {part!r}")
        codes = lists[part]
        if part == "nuts3" and context.get("cluster"):
            from ingest.config import load_catalogue
            from ingest.surveys.spec import cluster_nuts3

            try:  # as the parser restricts them (an unknown cluster's file is quarantined before this)
                within = cluster_nuts3(load_catalogue().cluster(str(context["cluster"])).region_specs)
                codes = [c for c in codes if c in within]
            except KeyError:
                pass
        out += codes
    return sorted(set(out))


# ------------------------------------------------------------------------------------------ resolution
def dimensions(frame: pd.DataFrame, context: dict[str, Any]) -> list[str]:
    """Dimension columns of a Eurostat frame (context ``dimensions`` wins)."""
    if context.get("dimensions"):
        return [str(d) for d in context["dimensions"]]
    return [str(c) for c in frame.columns if c not in EUROSTAT_NON_DIMENSIONS]


def string_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding text (pandas ``str``/``string`` or ``object`` dtype)."""
    import pandas as pd

    return [
        str(c)
        for c, dt in frame.dtypes.items()
        if dt == object or isinstance(dt, pd.StringDtype)  # noqa: E721 - dtype comparison
    ]


def _lookup(path: list[str], data: Any) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            raise Skip(".".join(path))
        data = data[key]
    return data


def _column_list(name: str, frame: pd.DataFrame, context: dict[str, Any]) -> list[str]:
    dims = dimensions(frame, context)
    if name == "$dimensions":
        return dims
    if name == "$key_columns":
        return dims + ["time"]
    if name == "$coded_dimensions":
        lists = context.get("code_lists") or {}
        return [d for d in dims if lists.get(d)]
    if name == "$string_columns":
        return string_columns(frame)
    if name.startswith("$context_keys."):
        try:
            return [str(k) for k in _lookup(name[len("$context_keys.") :].split("."), context)]
        except Skip:
            return []
    raise SuiteError(f"unknown column list placeholder {name!r}")


def _value(value: Any, column: str | None, frame: pd.DataFrame, context: dict[str, Any]) -> Any:
    """Resolve placeholders inside a kwarg value (recursively in lists)."""
    if isinstance(value, list):
        return [_value(v, column, frame, context) for v in value]
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    if column is not None:
        value = value.replace("$column", column)
    if value in ("$dimensions", "$key_columns", "$coded_dimensions", "$string_columns"):
        return _column_list(value, frame, context)
    if value.startswith("$code_list:"):
        return named_code_list(value.split(":", 1)[1], context)
    if value.startswith("$context."):
        return _lookup(value[len("$context.") :].split("."), context)
    if value == "$reference.geo_regex":
        return geo_regex()
    if not value.startswith("$"):
        return value  # "$column" replaced by a plain column name
    raise SuiteError(f"unknown placeholder {value!r}")


def _condition(when: dict[str, Any] | None, frame: pd.DataFrame) -> dict[str, Any] | None:
    if not when:
        return None
    if "absent" in when:  # the entry applies only to frames without that column
        if when["absent"] in frame.columns:
            raise Skip(f"column {when['absent']} present")
        return None
    if "null" in when:
        missing = [c for c in when["null"] if c not in frame.columns]
        if missing:
            raise Skip(f"column {missing[0]} absent")
        return {"null": list(when["null"])}
    col = when["column"]
    if col not in frame.columns:
        raise Skip(f"column {col} absent")
    if "matches" in when or "not_matches" in when:
        distinct = frame[col].dropna().astype(str).unique().tolist()
        keep = [
            v
            for v in distinct
            if re.search(when.get("matches", ""), v)
            and not (when.get("not_matches") and re.search(when["not_matches"], v))
        ]
        if not keep:
            raise Skip(f"no {col} value matches")
        return {"column": col, "in": sorted(keep)}
    # An entry no row can meet does not apply (as with `matches` above): on a staged table every condition costs
    # the warehouse a scan of its own.
    held = frame[col].dropna().astype(str).unique().tolist()
    if "in" in when:
        if not set(held) & {str(v) for v in when["in"]}:
            raise Skip(f"no {col} value in {when['in']}")
        return {"column": col, "in": list(when["in"])}
    if set(held) <= {str(v) for v in when["not_in"]} and not frame[col].isna().any():
        raise Skip(f"every {col} value in {when['not_in']}")
    return {"column": col, "not_in": list(when["not_in"])}


def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    cols = [kwargs["column"]] if isinstance(kwargs.get("column"), str) else []
    return cols + list(kwargs.get("column_list") or [])


def resolve(spec: dict[str, Any], frame: pd.DataFrame, context: dict[str, Any] | None = None) -> Resolution:
    """Concrete checks of a suite for one frame; entries that do not apply are listed in ``skipped``."""
    context = context or {}
    out = Resolution()
    for entry in spec["expectations"]:
        each = entry.get("for_each")
        if each is None:
            items: list[str | None] = [None]
        elif isinstance(each, list):
            items = list(each)
        else:
            items = list(_column_list(each, frame, context))
        meta = entry.get("meta") or {}
        for item in items:
            label = f"{entry['id']}[{item}]" if item else entry["id"]
            try:
                kwargs = {}
                for k, v in (entry.get("kwargs") or {}).items():
                    if v == "$code_list":
                        lists = context.get("code_lists") or {}
                        if item is None or not lists.get(item):
                            raise Skip(f"no code list for {item}")
                        kwargs[k] = sorted({str(x) for x in lists[item]})
                    else:
                        kwargs[k] = _value(v, item, frame, context)
                missing = [c for c in _columns_of(kwargs) if c not in frame.columns]
                if missing:
                    raise Skip(f"column {missing[0]} absent")
                if isinstance(kwargs.get("column_list"), list) and not kwargs["column_list"]:
                    raise Skip("empty column list")
                cond = _condition(entry.get("when"), frame)
            except Skip as why:
                out.skipped.append(f"{label}: {why}")
                continue
            column = kwargs.get("column") if isinstance(kwargs.get("column"), str) else None
            if column is None and kwargs.get("column_list"):
                column = ",".join(kwargs["column_list"])
            out.checks.append(
                Check(
                    rule=entry["id"],
                    type=entry["type"],
                    kwargs=kwargs,
                    severity=meta["severity"],
                    column=column,
                    expected=meta.get("expected", entry["id"]),
                    condition=cond,
                    mask_samples=bool(meta.get("mask_samples")),
                )
            )
    return out
