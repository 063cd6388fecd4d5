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


def build(ctx: RunContext) -> dict:
    return run_dbt(["build"], ctx)
