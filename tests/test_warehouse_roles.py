"""Least privilege per stage (issue #15.7): loads act as `loader`, dbt as `transformer`, the dashboard and BI as
`bi_reader`; the administrator account only migrates. Each role is tried on what it must and must not do."""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import errors

from ingest.warehouse import ADMIN, LOADER, READER, TRANSFORMER, connect

ROOT = Path(__file__).resolve().parents[1]

# (role, statement, allowed). In order: the transformer's probe mart exists before the others read it.
STATEMENTS = [
    # loader: raw and audit rows, nothing else
    (LOADER, "insert into audit.fetches (source, object, sha256, size_bytes) values ('t', 't', 'x', 1)", True),
    (LOADER, "delete from raw.eurostat_observations where dataset = 'none'", True),
    (LOADER, "select count(*) from audit.batches", True),
    (LOADER, "create table raw.intruder (x int)", False),
    (LOADER, "create table audit.intruder (x int)", False),
    (LOADER, "drop table raw.eurostat_observations", False),
    (LOADER, "alter table raw.eurostat_observations add column x int", False),
    (LOADER, "create table marts.intruder (x int)", False),
    (LOADER, "create role intruder", False),
    # transformer: builds its schemas, reads raw and audit.batches, writes neither
    (TRANSFORMER, "create table marts.probe_mart as select 1 as x", True),
    (TRANSFORMER, "create view staging.probe_view as select count(*) as n from raw.survey_soa_profile", True),
    (TRANSFORMER, "select count(*) from audit.batches", True),
    (
        TRANSFORMER,
        "insert into raw.eurostat_observations (dataset, series_key, dims, geo, time, batch_id)"
        " values ('x', 'x', '{}', 'x', '2020', 'x')",
        False,
    ),
    (TRANSFORMER, "delete from audit.batches", False),
    (TRANSFORMER, "select count(*) from audit.quarantine", False),
    (TRANSFORMER, "select count(*) from audit.run_summaries", False),
    (TRANSFORMER, "create table raw.intruder (x int)", False),
    # bi_reader: marts (default privileges of the transformer's tables) and the dashboard's audit views
    (READER, "select count(*) from marts.probe_mart", True),
    (READER, "select count(*) from audit.dashboard_quarantined", True),
    (READER, "select count(*) from audit.dashboard_sources", True),
    (READER, "select count(*) from audit.dashboard_last_run", True),
    (READER, "select count(*) from raw.survey_sme_respondents", False),
    (READER, "select count(*) from audit.batches", False),
    (READER, "select count(*) from audit.quarantine", False),
    (READER, "select count(*) from staging.probe_view", False),
    (READER, "create table marts.intruder (x int)", False),
    (READER, "delete from marts.probe_mart", False),
    # and after the fact: the loader cannot read what BI reads
    (LOADER, "select count(*) from marts.probe_mart", False),
]


def test_each_stage_role_does_its_job_and_nothing_more(fresh_db):
    wrong = []
    for role, statement, allowed in STATEMENTS:
        conn = connect(fresh_db, role=role)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("select current_user")
                assert cur.fetchone()[0] == role
                try:
                    cur.execute(statement)
                    done = True
                except errors.InsufficientPrivilege:
                    done = False
        finally:
            conn.close()
        if done != allowed:
            wrong.append(f"{role}: {statement} -> {'allowed' if done else 'refused'}, expected the opposite")
    assert not wrong, "\n".join(wrong)


def test_a_stage_cannot_step_out_of_its_role(fresh_db):
    """The role holds for the whole session (no statement runs before it is set): a stage cannot create a schema,
    and a role that is not a stage role is refused before connecting."""
    with pytest.raises(ValueError):
        connect(fresh_db, role="postgres")
    conn = connect(fresh_db, role=LOADER)
    try:
        with conn.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute("create schema intruder")
    finally:
        conn.close()


def test_only_the_warehouse_module_connects_as_administrator():
    """Every connect() to the warehouse names its role (a keyword without default); ADMIN is for migrations and role
    admin only."""
    admin_calls = []
    for path in sorted((ROOT / "ingest").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "connect":
                roles = [k.value for k in node.keywords if k.arg == "role"]
                if isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") != "warehouse":
                    continue  # psycopg2.connect, sqlite3.connect, an SQLAlchemy engine: not ingest.warehouse.connect
                assert roles, f"{path.relative_to(ROOT)}:{node.lineno}: connect() without role="
                if isinstance(roles[0], ast.Name) and roles[0].id == "ADMIN":
                    admin_calls.append(path.name)
    assert set(admin_calls) == {"warehouse.py"}, admin_calls


def test_dbt_objects_belong_to_the_transformer_after_migration(fresh_db):
    """Relations the administrator built before 0007 (an upgraded warehouse) are handed to the transformer."""
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create table marts.legacy_mart as select 1 as x")
        cur.execute("delete from audit.schema_migrations where version = '0007'")
    conn.close()
    from ingest.warehouse import migrate

    assert "0007_least_privilege" in migrate(fresh_db)
    conn = connect(fresh_db, role=ADMIN)
    with conn.cursor() as cur:
        cur.execute(
            "select n.nspname, c.relname, pg_get_userbyid(c.relowner) from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname in ('staging', 'intermediate', 'marts', 'reference', 'snapshots')"
            " and c.relkind in ('r', 'v', 'm')"
        )
        owners = {f"{s}.{r}": o for s, r, o in cur.fetchall()}
    conn.close()
    assert owners == {"marts.legacy_mart": "transformer"}
