"""Load the survey contract, code lists, reference lists and codebooks: data files, no code per layout."""

from __future__ import annotations

import copy
import csv
import fnmatch
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingest.config import Catalogue, ClusterRegion, load_catalogue

HERE = Path(__file__).resolve().parent
CONTRACT_DIR = HERE / "contract"
CODEBOOK_DIR = HERE / "codebooks"
REFERENCE_DIR = HERE / "reference"

FIELD_TYPES = {"string", "integer", "decimal", "boolean", "code", "likert", "multi_code", "text", "date"}
LIKERT_MIN, LIKERT_MAX = 1, 5
# What the raw columns accept (ingest/migrations/0002_surveys.sql), checked by the parser so that a file the
# contract passes never fails its load: integer fields are Postgres `integer` (smallint ones carry a narrower
# min/max in the contract, tested), decimals `numeric` (finite; capped far above any real cluster figure and
# where float64 is still exact to the euro), text `text` (no NUL or other control characters, bounded length).
INTEGER_RANGE = (-(2**31), 2**31 - 1)
DECIMAL_LIMIT = 1e15
TEXT_MAX_CHARS = {"string": 500, "text": 10_000}
_TARGET_RE = re.compile(r"^(?P<field>[a-z0-9_]+)(?:\[(?P<code>[a-z0-9_]+)\])?$")


def norm(text: object) -> str:
    """Normalised header / label for matching: no BOM, collapsed whitespace, case-folded."""
    return " ".join(str(text).replace("\ufeff", "").replace("\u00a0", " ").split()).casefold()


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool = False
    codes: tuple[str, ...] = ()
    per: str | None = None
    personal: str | None = None
    min: float | None = None
    max: float | None = None
    max_items: int | None = None
    wave: bool = False


@dataclass(frozen=True)
class SectionSpec:
    name: str
    kind: str  # "table" or "keyvalue"
    fields: dict[str, FieldSpec]
    key: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class Contract:
    instrument: str
    version: int
    sections: dict[str, SectionSpec]
    tables: dict[str, dict[str, Any]]
    code_lists: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Target:
    """Where a source column goes: a contract field, maybe one code of it (``importance[digitalisation]``)."""

    field: str
    code: str | None = None
    derive: str | None = None


@dataclass
class CodebookSection:
    name: str
    columns: dict[str, Target]  # normalised header -> target
    headers: dict[str, str]  # normalised header -> header as written in the codebook
    sheet: str | None = None
    label: str | None = None  # section label in a long CSV
    label_column: str | None = None
    value_column: str | None = None
    multi_separator: str = ";"


@dataclass
class Codebook:
    id: str
    version: int
    instrument: str
    layout: str  # csv | csv_long | xlsx | json
    language: str
    sections: dict[str, CodebookSection]
    encoding: str = "utf-8"
    delimiter: str = ","
    records: str | None = None  # json: key holding the record list
    long_columns: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    labels: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def family(self) -> str:
        return "csv" if self.layout in ("csv", "csv_long") else self.layout

    def ignored(self, header: str) -> bool:
        return any(fnmatch.fnmatchcase(norm(header), norm(p)) for p in self.ignore)

    def label_map(self, kind: str) -> dict[str, Any]:
        """Normalised label -> canonical value for ``boolean``, ``likert`` or a code list name."""
        if kind == "boolean" or kind.startswith("likert"):
            src = self.labels.get(kind)
        else:
            src = self.labels.get("codes", {}).get(kind)
        return {norm(k): v for k, v in (src or {}).items()}

    @property
    def missing_labels(self) -> set[str]:
        return {norm(x) for x in self.labels.get("missing", [])}


def _field(name: str, raw: dict) -> FieldSpec:
    if raw["type"] not in FIELD_TYPES:
        raise ValueError(f"field {name}: unknown type {raw['type']!r}")
    codes = raw.get("codes", ())
    return FieldSpec(
        name=name,
        type=raw["type"],
        required=bool(raw.get("required", False)),
        codes=tuple([codes] if isinstance(codes, str) else codes),
        per=raw.get("per"),
        personal=raw.get("personal"),
        min=raw.get("min"),
        max=raw.get("max"),
        max_items=raw.get("max_items"),
        wave=bool(raw.get("wave", False)),
    )


@cache
def code_lists() -> dict[str, tuple[str, ...]]:
    raw = yaml.safe_load((CONTRACT_DIR / "codes.yml").read_text(encoding="utf-8"))
    return {k: tuple(v) for k, v in raw["code_lists"].items()}


@cache
def load_contract(instrument: str) -> Contract:
    path = CONTRACT_DIR / f"{instrument}.yml"
    if not path.is_file():
        raise KeyError(instrument)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    sections = {
        name: SectionSpec(
            name=name,
            kind=s.get("kind", "table"),
            fields={f: _field(f, spec) for f, spec in s["fields"].items()},
            key=tuple(s.get("key", ())),
            optional=bool(s.get("optional", False)),
        )
        for name, s in raw["sections"].items()
    }
    return Contract(raw["instrument"], int(raw["version"]), sections, raw["tables"], code_lists())


def contract_instruments() -> list[str]:
    return sorted(p.stem for p in CONTRACT_DIR.glob("*.yml") if p.stem != "codes")


@cache
def nuts3_versions() -> dict[str, tuple[str, frozenset[str]]]:
    """NUTS-3 code -> (its NUTS-2 region, the NUTS versions it is valid in): every NUTS 3 region of 2021 and 2024
    (Extra-Regio codes aside)."""
    with (REFERENCE_DIR / "nuts3.csv").open(encoding="utf-8", newline="") as fh:
        return {r["code"]: (r["nuts2"], frozenset(r["nuts_version"].split())) for r in csv.DictReader(fh)}


def nuts3_reference() -> dict[str, str]:
    """NUTS-3 code -> its NUTS-2 region."""
    return {code: nuts2 for code, (nuts2, _versions) in nuts3_versions().items()}


def cluster_nuts3(regions: tuple[ClusterRegion, ...]) -> set[str]:
    """The NUTS-3 codes within a cluster's regions, each valid in the NUTS version its region is declared in."""
    return {
        code
        for code, (_nuts2, versions) in nuts3_versions().items()
        if any(code.startswith(r.code) and r.nuts_version in versions for r in regions)
    }


@cache
def nace_reference() -> frozenset[str]:
    with (REFERENCE_DIR / "nace_rev2.csv").open(encoding="utf-8", newline="") as fh:
        return frozenset(r["code"] for r in csv.DictReader(fh))


def allowed_codes(list_name: str, cluster: str, catalogue: Catalogue) -> set[str]:
    """Allowed canonical codes of a list; nuts3 depends on the cluster's NUTS-2 regions."""
    if list_name == "clusters":
        return {c.id for c in catalogue.clusters}
    if list_name == "nuts3":
        return cluster_nuts3(catalogue.cluster(cluster).region_specs)
    if list_name == "nace":
        return set(nace_reference())
    return set(code_lists()[list_name])


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _parse_target(raw: Any) -> Target:
    if isinstance(raw, dict):
        t = _parse_target(raw["field"])
        return Target(t.field, t.code, raw.get("derive"))
    m = _TARGET_RE.match(str(raw))
    if not m:
        raise ValueError(f"bad codebook target {raw!r}")
    return Target(m["field"], m["code"])


def _expand(columns: dict[str, Any], repeat: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Expand ``{service}`` templates over the codebook's ``repeat`` token -> code maps."""
    out: dict[str, Any] = {}
    for header, target in columns.items():
        names = [n for n in repeat if "{" + n + "}" in str(header)]
        if not names:
            out[header] = target
            continue
        name = names[0]
        for token, code in repeat[name].items():
            h = str(header).replace("{" + name + "}", str(token))
            if isinstance(target, dict):
                out[h] = {**target, "field": target["field"].replace("{" + name + "}", code)}
            else:
                out[h] = str(target).replace("{" + name + "}", code)
    return out


def _codebook(raw: dict, path: Path) -> Codebook:
    repeat = raw.get("repeat", {})
    sections = {}
    for name, s in raw["sections"].items():
        cols = _expand(s.get("columns", {}), repeat)
        sections[name] = CodebookSection(
            name=name,
            columns={norm(h): _parse_target(t) for h, t in cols.items()},
            headers={norm(h): str(h) for h in cols},
            sheet=s.get("sheet"),
            label=s.get("label"),
            label_column=s.get("label_column"),
            value_column=s.get("value_column"),
            multi_separator=s.get("multi_separator", ";"),
        )
    return Codebook(
        id=raw["id"],
        version=int(raw.get("version", 1)),
        instrument=raw["instrument"],
        layout=raw["layout"],
        language=raw.get("language", "en"),
        sections=sections,
        encoding=raw.get("encoding", "utf-8"),
        delimiter=raw.get("delimiter", ","),
        records=raw.get("records"),
        long_columns=raw.get("long_columns", {}),
        ignore=tuple(raw.get("ignore", ())),
        labels=raw.get("labels", {}),
        path=path,
    )


def codebook_dirs() -> tuple[Path, ...]:
    """Where codebooks are read from: the bundled ones, then the partnership's own folders (the catalogue's
    ``sources.surveys.codebook_dirs``, relative to the catalogue file). A partnership onboards a survey layout with a
    codebook of its own, beside its catalogue, without touching the product; it may ``extends`` a bundled one."""
    catalogue = load_catalogue()
    extra = (catalogue.sources.get("surveys") or {}).get("codebook_dirs") or ()
    return (CODEBOOK_DIR, *((catalogue.path.parent / d).resolve() for d in extra))


def raw_codebooks(directories: Path | tuple[Path, ...] | None = None) -> dict[str, tuple[dict, Path]]:
    """The codebook files as written, by id (``extends`` not resolved), from ``directories`` (default:
    :func:`codebook_dirs`); a later folder's codebook replaces an earlier one of the same id."""
    raws = {}
    for directory in (directories,) if isinstance(directories, Path) else directories or codebook_dirs():
        for p in sorted(Path(directory).glob("*.yml")):
            r = yaml.safe_load(p.read_text(encoding="utf-8"))
            raws[r["id"]] = (r, p)
    return raws


def resolve_extends(raw: dict, raws: dict[str, tuple[dict, Path]], seen: tuple[str, ...] = ()) -> dict:
    """``raw`` with what it ``extends`` merged in (deep merge, recursively); KeyError for an unknown base,
    ValueError for a cycle."""
    if "extends" not in raw:
        return raw
    if raw["extends"] in seen:
        raise ValueError(f"codebook {raw.get('id')}: extends cycle")
    base = resolve_extends(raws[raw["extends"]][0], raws, (*seen, raw["extends"]))
    merged = _merge({k: v for k, v in base.items() if k not in ("id", "abstract")}, raw)
    merged.pop("extends", None)
    return merged


def load_codebooks(directories: Path | tuple[Path, ...] | None = None) -> tuple[Codebook, ...]:
    """All codebooks (default: of :func:`codebook_dirs`); ``extends: <id>`` inherits another codebook's keys (deep
    merge)."""
    return _load_codebooks(directories or codebook_dirs())


@cache
def _load_codebooks(directories: Path | tuple[Path, ...]) -> tuple[Codebook, ...]:
    raws = raw_codebooks(directories)
    return tuple(
        _codebook(resolve_extends(r, raws, (cid,)), p) for cid, (r, p) in raws.items() if not r.get("abstract")
    )


def codebook(codebook_id: str) -> Codebook:
    for cb in load_codebooks():
        if cb.id == codebook_id:
            return cb
    raise KeyError(codebook_id)
