"""The inputs of the recomputation, read as plain Python values: the raw tables (``raw.*``), the survey batches'
arrival (``audit.batches``), the seed CSV files and the project vars (``dbt_project.yml``). Numbers are
``Fraction`` (from Postgres ``numeric`` / the seeds' text), never float."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import psycopg2
import psycopg2.extras
import yaml

from tests.pipeline.recompute.exact import frac

DBT_PROJECT = Path(__file__).resolve().parents[3] / "dbt_project"

SURVEY_TABLES = {
    # raw table -> columns read (cluster, wave, batch_id, file_sha256 are always read)
    "survey_sme_respondents": ["respondent_pid", "size_class", "digital_maturity", "low_carbon_offer"],
    "survey_sme_service_ratings": [
        "respondent_pid",
        "service",
        "used_12m",
        "importance",
        "satisfaction",
        "impact",
        "priority_top3",
    ],
    "survey_sme_interests": ["respondent_pid", "sector"],
    "survey_sme_offers_needs": ["respondent_pid", "direction", "code"],
    "survey_soa_profile": [
        "members_sme",
        "members_large_company",
        "members_research",
        "members_public",
        "members_other",
        "member_employees",
        "member_turnover_eur",
        "innovation_turnover_eur",
        "staff_fte",
        "labels",
    ],
    "survey_soa_kpis": [
        "events",
        "b2b_meetings",
        "matchmaking_contacts",
        "joint_projects_submitted",
        "joint_projects_won",
        "services_offered",
        "cross_sector_collaborations",
        "members_joined",
        "members_left",
    ],
    "survey_soa_swot": ["kind", "theme"],
}

_NEVER = datetime.min.replace(tzinfo=UTC)

# seed columns typed by the seeds' YAML (column_types); every other seed column is text ('' = null)
_SEED_TYPES = {
    "nuts_level": int,
    "baseline_year": int,
    "target_year": int,
    "baseline_value": frac,
    "target_value": frac,
    "in_nuts_2021": lambda v: v == "true",
    "in_nuts_2024": lambda v: v == "true",
}


@dataclass
class Inputs:
    observations: list[dict]  # raw.eurostat_observations (dims as dict, value as Fraction or None)
    surveys: dict[str, list[dict]]  # raw survey table -> rows of the LATEST file of each cluster x wave
    seeds: dict[str, list[dict]]  # seed or partnership table (clusters, cluster_regions, strategy_targets) -> rows
    vars: dict  # dbt_project.yml vars

    def seed(self, name: str, key: str) -> dict[str, dict]:
        return {row[key]: row for row in self.seeds[name]}


def load(url: str) -> Inputs:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            # Per batch its latest survey receipt (logical date, time received, receipt order), then its creation.
            cur.execute(
                "select b.batch_id, b.created_at, r.logical_date, r.received_at, r.receipt_id"
                " from audit.batches b left join lateral ("
                "   select logical_date, received_at, receipt_id from audit.batch_receipts r"
                "   where r.batch_id = b.batch_id and r.source = 'surveys'"
                "   order by logical_date desc, receipt_id desc limit 1) r on true"
            )
            arrival = {
                row["batch_id"]: (
                    row["logical_date"] or _NEVER.date(),
                    row["received_at"] or _NEVER,
                    row["receipt_id"] or -1,
                    row["created_at"] or _NEVER,
                )
                for row in cur.fetchall()
            }
            cur.execute(
                "select dataset, series_key, dims, geo, time, value, obs_status, conf_status, batch_id"
                " from raw.eurostat_observations"
            )
            observations = [{**row, "value": frac(row["value"])} for row in cur.fetchall()]
            surveys = {}
            for table, columns in SURVEY_TABLES.items():
                cur.execute(f"select cluster, wave, batch_id, file_sha256, {', '.join(columns)} from raw.{table}")  # noqa: S608 - fixed names
                surveys[table] = latest_file_rows([_exact(row) for row in cur.fetchall()], arrival)
    finally:
        conn.close()
    return Inputs(observations, surveys, load_seeds() | load_partnership(), load_vars())


def latest_file_rows(rows: list[dict], arrival: dict) -> list[dict]:
    """The rows of the latest file of each cluster x wave: a corrected file arrives as a new batch and the old
    one stays in raw. Latest = the latest arrival (its latest receipt: logical date, time received, receipt
    order; then the batch's creation; a batch unknown to audit never wins), then the higher file hash, then the
    higher batch id (dbt_project/README.md: "the latest file per cluster x wave")."""
    never = (_NEVER.date(), _NEVER, -1, _NEVER)
    newest: dict[tuple, tuple] = {}
    for row in rows:
        rank = (arrival.get(row["batch_id"]) or never, row["file_sha256"], row["batch_id"])
        key = (row["cluster"], row["wave"])
        newest[key] = max(newest.get(key, rank), rank)
    return [row for row in rows if (row["file_sha256"], row["batch_id"]) == newest[(row["cluster"], row["wave"])][1:]]


def _exact(row: dict) -> dict:
    from decimal import Decimal

    return {k: Fraction(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def load_seeds() -> dict[str, list[dict]]:
    seeds = {}
    for path in sorted((DBT_PROJECT / "seeds").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            seeds[path.stem] = [
                {col: (None if text == "" else _SEED_TYPES.get(col, str)(text)) for col, text in row.items()}
                for row in csv.DictReader(fh)
            ]
    return seeds


def load_partnership() -> dict[str, list[dict]]:
    """The catalogue's clusters, regions and strategy targets (``clusters``, ``cluster_regions``,
    ``strategy_targets``), typed like the seeds: what dbt's reference tables are built from."""
    from ingest.config import load_catalogue
    from ingest.partnership import TABLES, partnership_rows

    rows = partnership_rows(load_catalogue())
    return {
        table.removeprefix("partnership_"): [
            {col: None if v is None else _SEED_TYPES.get(col, str)(str(v)) for col, v in zip(columns, row, strict=True)}
            for row in rows[table]
        ]
        for table, columns in TABLES.items()
    }


def load_vars() -> dict:
    with (DBT_PROJECT / "dbt_project.yml").open(encoding="utf-8") as fh:
        project_vars = yaml.safe_load(fh)["vars"]
    # defaults the models document for vars the project file may not set
    return {
        "cagr_years": 5,
        "baseline_tolerance": Fraction("0.05"),
        "share_partition_tolerance": Fraction("0.01"),
        "top_shared_needs": 3,
        "matchmaking_offers_per_need": 5,
        **{k: (frac(str(v)) if isinstance(v, float) else v) for k, v in project_vars.items()},
    }
