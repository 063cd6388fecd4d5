"""dbt stage: everything around the one ``dbt build`` of a run, which Cosmos runs (``dbt`` task group,
``orchestration.dbt_task_group``) from the manifest.

* What every dbt invocation gets: the warehouse connection and its options (TLS, timeouts) as profile variables,
  acting as the transformer role (``dbt_env``, exported by ``export_dbt_env``), the run's logical date
  (``export_run_date``) and a backfill's dbt vars (``dbt_vars``: its date and schema prefix).
* dbt run in-process for the rest (``run_dbt``): ``dbt docs generate`` (task ``build_docs``) and ``dbt parse``
  into the manifest Cosmos renders the tasks from (``write_manifest``, ``ss4gl dbt manifest``).
* Whether a run must build at all (``needs_build``, task ``dbt_needed``): from what the warehouse holds and the
  fingerprint of what the marts are a function of, remembered after a successful build (``remember_build``,
  called by the publish stage).
* The relations the project builds (``project_relations``, ``history_marts``), read from the manifest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ingest.config import DBT_MANIFEST, DBT_PROFILE, DBT_PROJECT_DIR, DBT_TARGET, dbt_target_dir, state_dir
from ingest.tasks.common import LATEST_RECEIPT, RunContext, log
from ingest.warehouse import LIBPQ_ENV, ConnectionParts, warehouse_url


class DbtFailed(RuntimeError):
    """dbt reported failing models or tests (one line each)."""


def dbt_env(url: str | None = None) -> dict[str, str]:
    """Environment for dbt: the variables its profile reads (dbt_project/profiles.yml: the connection and its
    options, e.g. WAREHOUSE_SSLMODE) and libpq's variables for the options the profile has no field for."""
    from ingest.warehouse import TRANSFORMER

    env = ConnectionParts.from_url(url or warehouse_url()).dbt_env()
    env["WAREHOUSE_ROLE"] = TRANSFORMER  # dbt acts as the transformer role only (profiles.yml `role`)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


# The libpq variables of this process before export_dbt_env first set any (restored when a later URL lacks them).
_LIBPQ_BEFORE: dict[str, str | None] = {}


def export_dbt_env(url: str | None = None) -> dict[str, str]:
    """Put ``dbt_env`` into this process's environment, where in-process dbt reads it, and take back a libpq
    variable an earlier export set that this URL does not carry: one URL's options never reach another's dbt."""
    env = dbt_env(url)
    for var in LIBPQ_ENV.values():
        before = _LIBPQ_BEFORE.setdefault(var, os.environ.get(var))
        if var in env:
            continue
        if before is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = before
    os.environ.update(env)
    return env


ASOF_PREFIX = "asof_"  # a backfill's build: asof_staging, asof_marts, ... (macro generate_schema_name)
HISTORY_SCHEMA = "history"  # a backfill's marts, keyed by its logical_date (migration 0009)


LOGICAL_DATE_ENV = "SS4GL_LOGICAL_DATE"  # read by the macro run_logical_date(), at execution only


def dbt_vars(ctx: RunContext) -> dict[str, str]:
    """The run's dbt vars. A nightly run passes none: its logical date goes through ``export_run_date``, so the
    vars, and with them dbt's partial parse, stay the same from night to night (a full parse of the project is
    several seconds of every dbt invocation). A backfill passes its logical date and the schema prefix that
    builds it beside the current marts instead of over them (the prefix changes relation names: a full parse)."""
    if ctx.mode == "backfill":
        return {"logical_date": ctx.logical_date, "schema_prefix": ASOF_PREFIX}
    return {}


def export_run_date(ctx: RunContext) -> None:
    """Put the run's logical date (the as-of date of the survey files dbt selects) where in-process dbt reads it."""
    os.environ[LOGICAL_DATE_ENV] = ctx.logical_date


def dbt_args(
    command: list[str], ctx: RunContext | None = None, extra_vars: dict | None = None, target: Path | None = None
) -> list[str]:
    dbt_vars_ = dbt_vars(ctx) if ctx else {}
    dbt_vars_.update(extra_vars or {})
    return [
        *command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        # Named as Cosmos names them for the run's `dbt build`: the same vars, profile and target let this
        # invocation re-use that build's partial parse (``seed_partial_parse``).
        "--profile",
        DBT_PROFILE,
        "--target",
        DBT_TARGET,
        "--target-path",
        str(target or dbt_target_dir()),
        "--log-path",
        str(state_dir() / "logs" / "dbt"),
        "--vars",
        json.dumps(dbt_vars_),
    ]


PARTIAL_PARSE = "partial_parse.msgpack"


def seed_partial_parse(target: Path) -> bool:
    """Start dbt's ``target`` folder from the partial parse the run's ``dbt build`` left in Cosmos' cache when it
    is newer than the one there. Same project, vars, profile and target (``dbt_args``), so dbt re-uses it instead
    of parsing the whole project again (several seconds); dbt itself still checks every file and setting and
    parses again whatever differs. False when there was nothing newer (another worker built) or it could not be
    copied: this only saves time, it never fails a task."""
    import shutil
    import tempfile

    from cosmos import settings  # the cache folder Cosmos was configured with

    from ingest.config import DAG_ID, DBT_GROUP_ID

    if not (settings.enable_cache and getattr(settings, "enable_cache_partial_parse", True)):
        return False
    cached = Path(settings.cache_dir) / f"{DAG_ID}__{DBT_GROUP_ID}" / "target" / PARTIAL_PARSE
    here = target / PARTIAL_PARSE
    try:
        if here.exists() and here.stat().st_mtime >= cached.stat().st_mtime:
            return False
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".partial_parse.", delete=False) as tmp:
            with open(cached, "rb") as src:
                shutil.copyfileobj(src, tmp)
        Path(tmp.name).replace(here)
    except OSError as exc:
        log.info("dbt partial parse not seeded from %s: %s", cached, exc)
        return False
    return True


def run_dbt(
    command: list[str], ctx: RunContext | None = None, extra_vars: dict | None = None, target: Path | None = None
) -> dict:
    """Invoke dbt in-process (its artefacts in ``target``, default ``dbt_target_dir()``); return counts by status,
    raise DbtFailed with one line per failure."""
    from dbt.cli.main import dbtRunner

    export_dbt_env()
    if ctx:
        export_run_date(ctx)
    res = dbtRunner().invoke(dbt_args(command, ctx, extra_vars, target))
    counts: dict[str, int] = {}
    failures: list[str] = []
    results = getattr(res.result, "results", None) or []
    for r in results:
        status = str(getattr(r.status, "value", r.status))
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{r.node.resource_type} {r.node.name}: {status}: {(r.message or '').splitlines()[0:1]}")
    if not res.success:
        if res.exception is not None and not failures:
            failures.append(f"dbt {command[0]} failed: {res.exception}")
        raise DbtFailed("dbt " + " ".join(command) + " failed:\n" + "\n".join(failures or ["see dbt log"]))
    log.info("dbt %s: %s", " ".join(command), counts)
    return counts


def write_manifest() -> Path:
    """`dbt parse` into ``DBT_MANIFEST`` (dbt_project/target/manifest.json in a checkout): what Cosmos renders the
    dbt tasks from."""
    from dbt.cli.main import dbtRunner

    for key, value in ConnectionParts("127.0.0.1", 5432, "parse-only", "", "parse-only").dbt_env().items():
        os.environ.setdefault(key, value)  # parsing renders the profile but never connects
    # Logs under the state folder, as every dbt invocation's: an installed project folder may be read-only.
    res = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--profile",
            DBT_PROFILE,
            "--target",
            DBT_TARGET,
            "--target-path",
            str(DBT_MANIFEST.parent),
            "--log-path",
            str(state_dir() / "logs" / "dbt"),
            "--quiet",
        ]
    )
    if not res.success:
        raise DbtFailed(f"dbt parse failed: {res.exception}")
    return DBT_MANIFEST


def project_fingerprint() -> str:
    """sha256 over the dbt project's sources (models, seeds, snapshots, macros, tests, config)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(DBT_PROJECT_DIR.rglob("*")):
        rel = path.relative_to(DBT_PROJECT_DIR)
        if (
            path.is_file()
            and rel.parts[0] not in ("target", "logs", "dbt_packages")
            and path.suffix in (".sql", ".yml", ".yaml", ".csv", ".md")
        ):
            digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def needs_build(ctx: RunContext) -> tuple[bool, str]:
    """Whether the marts can be stale or missing; the warehouse, not a local file, says what was built.

    Marts are a function of raw, the receipts as of the run's date and the dbt project, so a run may skip dbt
    only when nothing was loaded in it, every relation it builds exists in the warehouse, and the fingerprint of
    the last successful build of the same kind (the current marts; for a backfill, the marts as of its date in
    ``history``) is the current one. ``rebuild`` (DAG param, ``--rebuild``) always builds.
    """
    from ingest.warehouse import LOADER, connect

    if ctx.rebuild:
        return True, "rebuild requested"
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) from audit.run_batches where run_id = %s and status = 'loaded' and rows_loaded > 0",
            (ctx.run_id,),
        )
        loaded = cur.fetchone()[0]
        missing = missing_relations(cur) if ctx.mode != "backfill" else missing_history(ctx)
        cur.execute("select batch_id from audit.source_state where source = 'dbt' and object = %s", (build_key(ctx),))
        row = cur.fetchone()
        current = build_fingerprint(cur, ctx.logical_date)
    conn.close()
    if loaded:
        return True, f"{loaded} batch(es) loaded in this run"
    if missing:
        return True, f"{len(missing)} dbt relation(s) missing from the warehouse ({', '.join(missing[:5])})"
    if row is None or row[0] != current:
        return True, "the dbt project or the batches in raw changed since the last successful build"
    return False, "no source changed and the dbt project is unchanged: the marts are current"


def build_key(ctx: RunContext) -> str:
    """Where the fingerprint of a run's last successful build is kept (audit.source_state, source 'dbt')."""
    return f"asof:{ctx.logical_date}" if ctx.mode == "backfill" else "build"


def history_marts() -> list[str]:
    """The marts a backfill publishes into ``history`` (all but the revisions, which are history already)."""
    return [
        name for _kind, schema, name in project_relations() if schema == "marts" and name != "mart_eurostat_revisions"
    ]


def missing_history(ctx: RunContext) -> list[str]:
    """``history.<mart>`` tables without rows as of the backfill's date (read as BI tools read them)."""
    from psycopg2 import sql

    from ingest.warehouse import READER, connect

    missing = []
    conn = connect(role=READER)
    with conn, conn.cursor() as cur:
        for mart in history_marts():
            cur.execute(
                "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relname = %s",
                (HISTORY_SCHEMA, mart),
            )
            if cur.fetchone() is None:
                missing.append(f"{HISTORY_SCHEMA}.{mart}")
                continue
            cur.execute(
                sql.SQL("select exists (select 1 from {} where logical_date = %s)").format(
                    sql.Identifier(HISTORY_SCHEMA, mart)
                ),
                (ctx.logical_date,),
            )
            if not cur.fetchone()[0]:
                missing.append(f"{HISTORY_SCHEMA}.{mart} as of {ctx.logical_date}")
    conn.close()
    return missing


def project_relations() -> list[tuple[str, str, str]]:
    """(resource type, schema, name) of every relation the dbt project builds (models, seeds, snapshots)."""
    nodes = json.loads(DBT_MANIFEST.read_text(encoding="utf-8"))["nodes"].values()
    return sorted(
        (n["resource_type"], n["schema"], n["alias"])
        for n in nodes
        if n["resource_type"] in ("model", "seed", "snapshot") and n["config"].get("materialized") != "ephemeral"
    )


def missing_relations(cur) -> list[str]:
    """``schema.name`` of every relation of the project that the warehouse does not hold."""
    names = [f"{schema}.{name}" for _kind, schema, name in project_relations()]
    # From the catalogue, not to_regclass: the loader role this runs as has no usage on dbt's schemas.
    cur.execute(
        "select n from unnest(%s::text[]) as n where not exists (select 1 from pg_class c"
        " join pg_namespace s on s.oid = c.relnamespace"
        " where s.nspname = split_part(n, '.', 1) and c.relname = split_part(n, '.', 2)) order by n",
        (names,),
    )
    return [r[0] for r in cur.fetchall()]


def build_fingerprint(cur, logical_date: str) -> str:
    """sha256 of what the marts are a function of: the dbt project, which batches raw holds and, per batch, its
    latest receipt on or before ``logical_date`` (dbt picks the current survey file by arrival as of the run's
    date, so a backfill of an earlier date builds other marts from the same raw; the next nightly sees that the
    selection changed and builds again)."""
    import hashlib

    from psycopg2 import sql

    cur.execute(  # raw's tables, a partitioned one once (not its partitions as well)
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'raw' and c.relkind in ('r', 'p') and not c.relispartition order by 1"
    )
    tables = [r[0] for r in cur.fetchall()]
    digest = hashlib.sha256(project_fingerprint().encode())
    if tables:
        batches = sql.SQL(" union ").join(
            sql.SQL("select distinct batch_id from raw.{}").format(sql.Identifier(t)) for t in tables
        )
        cur.execute(
            sql.SQL("select b.batch_id, a.logical_date, a.received_at from ({}) b left join {} order by 1").format(
                batches, LATEST_RECEIPT
            ),
            (logical_date,),
        )
        for batch_id, received_on, received_at in cur.fetchall():
            digest.update(f"\0{batch_id}\0{received_on}\0{received_at}".encode())
    return digest.hexdigest()


def remember_build(cur, ctx: RunContext) -> None:
    """After a successful build: the fingerprints needs_build compares against."""
    cur.execute(
        "insert into audit.source_state (source, object, batch_id) values ('dbt', 'project', %s), ('dbt', %s, %s)"
        " on conflict (source, object) do update set batch_id = excluded.batch_id, loaded_at = now()",
        (project_fingerprint(), build_key(ctx), build_fingerprint(cur, ctx.logical_date)),
    )
