"""ss4gl_nightly: Eurostat + cluster surveys → archive → GX validation → raw → dbt marts → run summary.

Runs at 01:30 Europe/Brussels, after Eurostat's 23:00 CET release. Logic lives in `ingest/`; see README.
"""

import pendulum
from airflow.sdk import DAG, Asset, Param, TaskGroup, task
from airflow.timetables.trigger import CronTriggerTimetable

from ingest import orchestration as o

with DAG(
    dag_id=o.DAG_ID,
    schedule=CronTriggerTimetable(o.NIGHTLY_CRON, timezone=o.TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=o.TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={**o.DEFAULT_ARGS, "on_failure_callback": o.alert},
    tags=o.TAGS,
    doc_md=__doc__,
    params={name: Param(default, type="boolean", description=text) for name, (default, text) in o.PARAMS.items()},
) as dag:
    migrate = task(o.migrate_warehouse, task_id="migrate_warehouse", **o.NETWORK_RETRIES, **o.queue("other"))()
    partnership = task(o.load_partnership, task_id="load_partnership", **o.queue("other"))()

    with TaskGroup("eurostat"):
        datasets = task(o.eurostat_plan, task_id="plan", **o.NETWORK_RETRIES, **o.queue("other"))()
        extracted = task(
            o.eurostat_extract, task_id="extract", pool=o.EUROSTAT_POOL, **o.NETWORK_RETRIES, **o.queue("extract")
        ).expand(dataset=datasets)
        eurostat_valid = task(o.eurostat_validate, task_id="validate", trigger_rule="all_done", **o.queue("validate"))()
        eurostat_loaded = task(
            o.eurostat_load,
            task_id="load",
            trigger_rule="all_done",
            outlets=[Asset(o.RAW_ASSETS["eurostat"])],
            **o.queue("load"),
        )()
        extracted >> eurostat_valid >> eurostat_loaded

    with TaskGroup("surveys"):
        received = task(o.surveys_extract, task_id="extract", **o.queue("extract"))()
        surveys_valid = task(o.surveys_validate, task_id="validate", **o.queue("validate"))()
        surveys_loaded = task(
            o.surveys_load,
            task_id="load",
            trigger_rule="all_done",
            outlets=[Asset(o.RAW_ASSETS["surveys"])],
            **o.queue("load"),
        )()
        received >> surveys_valid >> surveys_loaded

    dbt_needed = task.short_circuit(
        o.dbt_needed, task_id="dbt_needed", ignore_downstream_trigger_rules=False, **o.queue("dbt")
    )()
    dbt = o.dbt_task_group()
    docs = task(o.build_docs, task_id="build_docs", trigger_rule="none_failed_min_one_success", **o.queue("dbt"))()
    # Red when batches were quarantined (a data problem); publish, the only leaf, keeps the run green then.
    quarantine = task(o.quarantine_report, task_id=o.QUARANTINE_TASK, trigger_rule="all_done", **o.queue("other"))()
    published = task(
        o.publish, task_id="publish", trigger_rule="all_done", outlets=[Asset(o.MARTS_ASSET)], **o.queue("other")
    )()

    migrate >> [datasets, received, partnership]
    [eurostat_loaded, surveys_loaded, partnership] >> dbt_needed >> dbt >> docs >> published
    [eurostat_loaded, surveys_loaded] >> quarantine >> published
