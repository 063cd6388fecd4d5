"""dbt stage: build seeds, models, snapshots and tests of ``dbt_project/`` on the warehouse."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ingest.config import DBT_PROJECT_DIR, state_dir
from ingest.tasks.common import RunContext, log
from ingest.warehouse import Target, warehouse_url


class DbtFailed(RuntimeError):
    """dbt reported failing models or tests (one line each)."""


def dbt_target_dir() -> Path:
    return state_dir() / "dbt" / "target"


def dbt_env(url: str | None = None) -> dict[str, str]:
    """Environment for dbt's profile (dbt_project/profiles.yml reads only these variables)."""
    env = Target.from_url(url or warehouse_url()).dbt_env()
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


def dbt_args(command: list[str], ctx: RunContext | None = None, extra_vars: dict | None = None) -> list[str]:
    dbt_vars = {"run_id": ctx.run_id, "logical_date": ctx.logical_date} if ctx else {}
    dbt_vars.update(extra_vars or {})
    return [
        *command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(dbt_target_dir()),
        "--log-path", str(state_dir() / "logs" / "dbt"),
        "--vars", json.dumps(dbt_vars),
    ]


def run_dbt(command: list[str], ctx: RunContext | None = None, extra_vars: dict | None = None) -> dict:
    """Invoke dbt in-process; return counts by status, raise DbtFailed with one line per failure."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env())
    res = dbtRunner().invoke(dbt_args(command, ctx, extra_vars))
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
    """`dbt parse` into dbt_project/target/manifest.json: what Cosmos renders the dbt tasks from."""
    from dbt.cli.main import dbtRunner

    from ingest.orchestration import DBT_MANIFEST

    for key, value in Target("127.0.0.1", 5432, "parse-only", "", "parse-only").dbt_env().items():
        os.environ.setdefault(key, value)  # parsing renders the profile but never connects
    res = dbtRunner().invoke(["parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                              "--target-path", str(DBT_MANIFEST.parent), "--quiet"])
    if not res.success:
        raise DbtFailed(f"dbt parse failed: {res.exception}")
    return DBT_MANIFEST


def project_fingerprint() -> str:
    """sha256 over the dbt project's sources (models, seeds, snapshots, macros, tests, config)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(DBT_PROJECT_DIR.rglob("*")):
        rel = path.relative_to(DBT_PROJECT_DIR)
        if path.is_file() and rel.parts[0] not in ("target", "logs", "dbt_packages") and path.suffix in (
            ".sql", ".yml", ".yaml", ".csv", ".md"
        ):
            digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def needs_build(ctx: RunContext) -> tuple[bool, str]:
    """Whether the marts can be stale: rows replaced in raw by this run, or a changed dbt project.

    Marts are a function of raw and the dbt project only, so a run (nightly or backfill) that changed neither
    skips dbt entirely.
    """
    from ingest.warehouse import connect

    conn = connect()
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from audit.batches where run_id = %s and status = 'loaded' and rows_loaded > 0",
                    (ctx.run_id,))
        loaded = cur.fetchone()[0]
        cur.execute("select batch_id from audit.source_state where source = 'dbt' and object = 'project'")
        row = cur.fetchone()
    conn.close()
    if loaded:
        return True, f"{loaded} batch(es) loaded in this run"
    if row is None or row[0] != project_fingerprint():
        return True, "the dbt project changed since the last successful build"
    return False, "no source changed and the dbt project is unchanged: the marts are current"


def remember_build(cur) -> None:
    """After a successful build: the fingerprint needs_build compares against."""
    cur.execute(
        "insert into audit.source_state (source, object, batch_id) values ('dbt', 'project', %s)"
        " on conflict (source, object) do update set batch_id = excluded.batch_id, loaded_at = now()",
        (project_fingerprint(),),
    )


def build(ctx: RunContext) -> dict:
    return run_dbt(["build"], ctx)
