"""Everything the DAG files need: constants, default args, callbacks and thin task callables.

Kept light: importing this module (at DAG parse time) imports no pandas, GX or dbt; each callable imports its
stage inside the function body.
"""

from __future__ import annotations

import functools
import logging
import os
from datetime import timedelta

from ingest.config import DAG_ID, DBT_GROUP_ID, DBT_MANIFEST, DBT_PROFILE, DBT_PROJECT_DIR, DBT_TARGET
from ingest.config import DBT_BUILD_LOCK as DBT_BUILD_LOCK  # the dbt producer holds it (tests read it here)
from ingest.config import QUARANTINE_TASK as QUARANTINE_TASK  # shared with the run summary; dags/ reads it here

log = logging.getLogger("ss4gl")

OWNER = "ss4gl-data-engineering"
TAGS = ["ss4gl", "nightly", "eurostat", "surveys", "dbt"]
TIMEZONE = "Europe/Brussels"
# Eurostat publishes at 11:00 and 23:00 CET; run after the night release.
NIGHTLY_CRON = "30 1 * * *"
EUROSTAT_POOL = "eurostat"
# Run options in Airflow's trigger form (DAG params; `--dag-run-conf` / `ss4gl run` flags set the same keys).
PARAMS = {
    "refetch": (False, "Backfill runs: download the sources again instead of replaying the archive"),
    "rebuild": (False, "Build every dbt model even when no source changed (e.g. after a mart was dropped)"),
}

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 0,  # only network tasks retry (NETWORK_RETRIES); validation failures never do
    "depends_on_past": False,
}
NETWORK_RETRIES = {
    "retries": 3,
    "retry_delay": timedelta(seconds=int(os.environ.get("SS4GL_RETRY_DELAY_SECONDS", "60"))),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}

# Celery queues per kind of task (SS4GL_QUEUES, JSON, e.g. {"extract": "ingest"}): route the tasks that download
# and archive to workers with network access, the rest to others. Kinds: extract (eurostat.extract,
# surveys.extract), validate, load, dbt (the dbt group, dbt_needed, build_docs) and other (plan, migrate,
# reports, publish). A kind not named runs on Airflow's default queue ([operators] default_queue).
QUEUE_KINDS = ("extract", "validate", "load", "dbt", "other")


def queue(kind: str) -> dict[str, str]:
    """Task arguments that put a task of this kind on its configured queue (none when not configured)."""
    import json

    assert kind in QUEUE_KINDS, kind
    try:
        queues = json.loads(os.environ.get("SS4GL_QUEUES") or "{}")
    except ValueError:
        raise ValueError('SS4GL_QUEUES is not JSON (expected e.g. {"extract": "ingest"})') from None
    unknown = sorted(set(queues) - set(QUEUE_KINDS))
    if unknown:
        raise ValueError(f"SS4GL_QUEUES names unknown kinds {unknown}; kinds are {list(QUEUE_KINDS)}")
    return {"queue": str(queues[kind])} if kind in queues else {}


RAW_ASSETS = {
    "eurostat": "ss4gl://warehouse/raw/eurostat_observations",
    "surveys": "ss4gl://warehouse/raw/surveys",
}
MARTS_ASSET = "ss4gl://warehouse/marts"


def _ctx(context: dict):
    from ingest.tasks.common import RunContext

    return RunContext.from_airflow(context)


def alert(context: dict) -> None:
    """One readable alert per failed task: always logged; posted to ALERT_WEBHOOK_URL when configured."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    reason = str(exc).strip().splitlines()[0] if exc else "unknown reason"
    notify(
        f"ALERT {getattr(ti, 'dag_id', DAG_ID)}.{getattr(ti, 'task_id', '?')} failed "
        f"(run {context.get('run_id')}, try {getattr(ti, 'try_number', '?')}): {reason}"
    )


def notify(message: str) -> None:
    """Log one alert line; post it (JSON ``{"text": ...}``) to ALERT_WEBHOOK_URL when configured."""
    log.error(message)
    url = os.environ.get("ALERT_WEBHOOK_URL")
    if url:
        import requests

        try:
            requests.post(url, json={"text": message}, timeout=10)
        except requests.RequestException as post_exc:
            log.error("alert webhook %s unreachable: %s", url.split("?")[0], post_exc)


def dbt_task_group(group_id: str = DBT_GROUP_ID, **kwargs):
    """The dbt project as Airflow tasks (Cosmos, manifest load mode, one task per model/seed/snapshot).

    Cosmos' watcher mode runs ONE `dbt build` (dbt's own threads) and a sensor per node reports that node's
    status under its own name: a failing model or test is visible by name, at the cost of one dbt invocation.
    Tests are part of each node's build and are never retried (retries=0).
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    if not DBT_MANIFEST.exists():
        raise FileNotFoundError(f"dbt manifest missing at {DBT_MANIFEST}: run `make install` (ss4gl dbt manifest)")
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR, manifest_path=DBT_MANIFEST, project_name="ss4gl"
        ),
        profile_config=ProfileConfig(
            profile_name=DBT_PROFILE, target_name=DBT_TARGET, profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml"
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.AFTER_EACH),
        operator_args={
            "retries": 0,
            "install_deps": False,
            "pre_execute": dbt_env_hook,
            "interceptors": [dbt_run_vars],
            **queue("dbt"),
        },
        default_args={**DEFAULT_ARGS, "on_failure_callback": alert},
        **kwargs,
    )
    # Node sensors start after the producer's `dbt build`: they then read each node's result at once, and a
    # sequential runner (dag.test, one worker slot) can never park a sensor ahead of the build it waits for.
    producer = next(t for t in group.roots if t.task_id.endswith("dbt_producer_watcher"))
    for root in group.roots:
        if root is not producer:
            producer >> root
    producer.execute = serialised(producer.execute, DBT_BUILD_LOCK)
    keep_final_node_events(producer)
    # dbt's unit tests check model logic on fixed inputs, not the night's data: CI runs them (tests/dbt), a
    # production build leaves them out, as dbt recommends (about a fifth of the build's time).
    producer.dbt_cmd_flags = [*producer.dbt_cmd_flags, "--exclude-resource-type", "unit_test"]
    return group


# dbt events of a node before its end. Cosmos pushes each to the node's one "dbt event" XCom, and the next push
# overwrites it; the node sensors read it only once the build has ended (they start after the producer).
_NODE_PROGRESS_EVENTS = tuple(f'"name": "{name}"' for name in ("NodeStart", "NodeCompiling", "NodeExecuting"))


def final_node_events_only(parse):
    """Wrap Cosmos' parser of dbt's JSON events so it never sees a node's progress events: three of the four
    XCom writes per node of a build, which nothing reads (a fifth of the producer's time)."""

    def parse_final(line: str, extra_kwargs) -> None:
        if not any(event in line for event in _NODE_PROGRESS_EVENTS):
            parse(line, extra_kwargs)

    return parse_final


def keep_final_node_events(producer) -> None:
    make_parse = producer._make_parse_callable  # Cosmos builds the parser anew for each dbt invocation
    producer._make_parse_callable = lambda: final_node_events_only(make_parse())


def serialised(execute, lock_name: str):
    """Wrap an operator's execute so that it runs under the warehouse advisory lock ``lock_name``: a nightly run
    and a backfill (or two deployments) never build the dbt project into the same warehouse at once."""

    @functools.wraps(execute)
    def run(context):
        from ingest.warehouse import exclusive

        with exclusive(lock_name):
            return execute(context)

    run.lock_name = lock_name
    return run


def dbt_run_vars(context: dict, operator) -> None:
    """Cosmos interceptor, run before the dbt command is built: this run's logical date and dbt vars
    (transform.export_run_date, transform.dbt_vars). (Templated ``vars`` reach the watcher's ``dbt build``
    unrendered, so every model saw an empty logical date.)"""
    from ingest.tasks.transform import LOGICAL_DATE_ENV, dbt_vars, export_run_date

    ctx = _ctx(context)
    export_run_date(ctx)  # dbt in this process (Cosmos' dbtRunner invocation)
    operator.env = {**(operator.env or {}), LOGICAL_DATE_ENV: ctx.logical_date}  # a dbt subprocess, if ever
    operator.vars = {**(operator.vars or {}), **dbt_vars(ctx)}


def dbt_env_hook(context: dict) -> None:
    """Before a dbt task: export the warehouse connection into the variables dbt's profile reads."""
    from ingest.tasks.transform import export_dbt_env

    export_dbt_env()


# ------------------------------------------------------------------------------------------- task callables
def eurostat_plan(**context) -> list[str]:
    from ingest.tasks import eurostat, from_archive

    ctx = _ctx(context)
    if ctx.replay:
        return from_archive.plan(ctx, eurostat.SOURCE)
    if ctx.mode == "nightly":  # put back what a backfill of an earlier date replaced (validate/load replay it)
        from_archive.reconcile(ctx, eurostat.SOURCE)
    ti = context["ti"]
    last_try = ti.try_number > ti.max_tries  # Airflow 3: try_number counts from 1, max_tries = retries
    return eurostat.plan(ctx, last_try=last_try, alert=lambda line: notify(f"ALERT {DAG_ID} {line}"))


def eurostat_extract(dataset: str, **context) -> dict:
    from ingest.tasks import eurostat, from_archive

    ctx = _ctx(context)
    return from_archive.register(ctx, eurostat.SOURCE, [dataset]) if ctx.replay else eurostat.extract(ctx, dataset)


def eurostat_validate(**context) -> dict:
    from ingest.tasks import eurostat, gate

    return gate.validate(_ctx(context), eurostat.SOURCE, eurostat.prepare)


def eurostat_load(**context) -> dict:
    from ingest.tasks import eurostat, gate

    return gate.load(_ctx(context), eurostat.SOURCE, after_load=eurostat.remember_loaded)


def surveys_extract(**context) -> dict:
    from ingest.tasks import from_archive, surveys

    ctx = _ctx(context)
    if ctx.replay:
        return from_archive.register(ctx, surveys.SOURCE)
    got = surveys.extract(ctx)
    if ctx.mode == "nightly":
        got.update(from_archive.reconcile(ctx, surveys.SOURCE))
    return got


def surveys_validate(**context) -> dict:
    from ingest.tasks import gate, surveys

    return gate.validate(_ctx(context), surveys.SOURCE, surveys.prepare, on_quarantine=surveys.write_reason)


def surveys_load(**context) -> dict:
    from ingest.tasks import gate, surveys

    return gate.load(_ctx(context), surveys.SOURCE, on_quarantine=surveys.write_reason)


def quarantine_report(**context) -> dict:
    """Fail (red in the grid, one alert line per batch) when this run quarantined batches; the run itself stays
    successful (publish ignores this task), so a data problem is told apart from a broken pipeline."""
    from ingest.tasks import publish as pub

    ctx = _ctx(context)
    lines = pub.quarantined_in_run(ctx)
    for line in lines:
        notify(f"ALERT {DAG_ID} quarantined {line}")
    if lines:
        raise pub.DataQuarantined(
            f"completed with {len(lines)} quarantined batch(es); every other batch loaded"
            " (`ss4gl quarantine list`):\n" + "\n".join(lines)
        )
    return {"quarantined": 0}


def migrate_warehouse(**context) -> list[str]:
    from ingest.warehouse import migrate

    return migrate()


def load_partnership(**context) -> str:
    """The partnership's configuration (clusters, regions, targets) from the catalogue into raw. A catalogue with
    problems fails this task only, in one line: the sources are still taken in, the marts keep the last good
    configuration (dbt does not run) and the run ends red."""
    from ingest.partnership import load_partnership as load

    batch_id = load()
    log.info("partnership configuration %s loaded", batch_id)
    return batch_id


def dbt_needed(**context) -> bool:
    """Short-circuit the dbt group when no batch loaded in this run and the dbt project is unchanged."""
    from ingest.tasks import transform

    needed, reason = transform.needs_build(_ctx(context))
    log.info("dbt build %s: %s", "needed" if needed else "skipped", reason)
    return needed


def build_docs(**context) -> dict:
    """dbt docs (catalog of the warehouse) and the static strategy dashboard, published to the storage."""
    from ingest.tasks import publish as pub

    # dbt_needed pushes True when the group runs; a short-circuited (False) result is not pushed
    return pub.build_docs(_ctx(context), built=context["ti"].xcom_pull(task_ids="dbt_needed") is True)


def publish(**context) -> dict:
    from ingest.tasks import publish as pub

    ti = context["ti"]
    try:  # states and durations of this run's finished tasks (Airflow 3 execution API)
        crumbs = list(ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=context["run_id"]))
    except Exception as exc:  # noqa: BLE001 - the summary must still be written
        log.warning("task states unavailable for the run summary: %s", exc)
        crumbs = []
    return pub.publish(_ctx(context), crumbs, alert=notify)
