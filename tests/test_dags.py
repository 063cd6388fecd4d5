"""DagBag policy: no import errors, owner/tags/retries policy, light imports, parse time of the dags folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NETWORK_TASKS = {"migrate_warehouse", "eurostat.plan", "eurostat.extract"}

PROBE = textwrap.dedent(
    """
    import json, sys, time
    from airflow.models.dagbag import DagBag
    t0, c0 = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=sys.argv[1])
    parse_s, parse_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    heavy = [m for m in ("pandas", "great_expectations", "dbt", "numpy", "pyarrow", "psycopg2") if m in sys.modules]
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
            "timetable": type(dag.timetable).__name__, "tz": str(getattr(dag.timetable, "_timezone", "")),
            "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries, "pool": t.pool,
                                  "trigger_rule": str(t.trigger_rule), "on_failure": bool(t.on_failure_callback),
                                  "lock": getattr(getattr(t, "execute", None), "lock_name", None),
                                  "queue": t.queue, "dbt_cmd_flags": getattr(t, "dbt_cmd_flags", None),
                                  "parser": getattr(getattr(t, "_make_parse_callable", lambda: None)(),
                                                    "__name__", None)}
                      for t in dag.tasks},
        }
    print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "parse_s": parse_s,
                      "parse_cpu_s": parse_cpu_s,
                      "heavy": heavy, "dags": dags}))
    """
)


def parse(home: Path, **extra_env: str) -> dict:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **extra_env}
    if "SS4GL_QUEUES" not in extra_env:
        env.pop("SS4GL_QUEUES", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags")], capture_output=True, text=True, env=env, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    return parse(tmp_path_factory.mktemp("airflow"))


def test_no_import_errors(dagbag):
    assert dagbag["errors"] == {}
    assert "ss4gl_nightly" in dagbag["dags"]


def test_parse_time_and_light_imports(dagbag):
    # CPU seconds of the parsing process: what the parse costs, independent of other load on a shared machine.
    cpu, wall = dagbag["parse_cpu_s"], dagbag["parse_s"]
    assert cpu < 2.0, f"parsing dags/ took {cpu:.2f} CPU s ({wall:.2f} s wall)"
    assert dagbag["heavy"] == [], f"heavy modules imported at parse time: {dagbag['heavy']}"


def test_schedule_policy(dagbag):
    dag = dagbag["dags"]["ss4gl_nightly"]
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["timetable"] == "CronTriggerTimetable"
    assert "Europe/Brussels" in dag["tz"]


@pytest.mark.parametrize("dag_id", ["ss4gl_nightly"])
def test_task_policy(dagbag, dag_id):
    dag = dagbag["dags"][dag_id]
    assert "ss4gl" in dag["tags"]
    for task_id, t in dag["tasks"].items():
        assert t["owner"] == "ss4gl-data-engineering", task_id
        assert t["on_failure"], f"{task_id} has no on_failure_callback"
        if task_id in NETWORK_TASKS:
            assert t["retries"] >= 2, f"network task {task_id} must retry"
        else:
            assert t["retries"] == 0, f"{task_id} is not a network task and must not retry"
    assert dag["tasks"]["eurostat.extract"]["pool"] == "eurostat"


def test_dag_shape(dagbag):
    tasks = set(dagbag["dags"]["ss4gl_nightly"]["tasks"])
    # Cosmos renders one task per dbt model (run + tests) from the manifest.
    assert {"dbt.mart_partnership_indicators.run", "dbt.mart_partnership_indicators.test"} <= tasks
    for stage in (
        "eurostat.extract",
        "eurostat.validate",
        "eurostat.load",
        "surveys.extract",
        "surveys.validate",
        "surveys.load",
        "dbt_needed",
        "dbt.dbt_producer_watcher",
        "build_docs",
        "publish",
    ):
        assert stage in tasks


def test_dbt_build_is_serialised_across_runs(dagbag):
    """Of the tasks, only the one that runs `dbt build` is wrapped in the warehouse lock (overlapping nightly +
    backfill builds); ingest.partnership.load_partnership takes the same lock inside, around its rows' replacement
    (tests/test_partnership.py)."""
    locked = {k: v["lock"] for k, v in dagbag["dags"]["ss4gl_nightly"]["tasks"].items() if v["lock"]}
    assert locked == {"dbt.dbt_producer_watcher": "ss4gl.dbt_build"}


def test_the_nightly_build_leaves_dbt_unit_tests_to_ci(dagbag):
    """The producer's `dbt build` excludes unit tests (fixed inputs, run by tests/dbt), nothing else."""
    tasks = dagbag["dags"]["ss4gl_nightly"]["tasks"]
    assert tasks["dbt.dbt_producer_watcher"]["dbt_cmd_flags"] == ["--exclude-resource-type", "unit_test"]
    assert not any(v["dbt_cmd_flags"] for k, v in tasks.items() if k != "dbt.dbt_producer_watcher")


def test_the_producer_pushes_only_the_final_event_of_each_dbt_node(dagbag):
    """Cosmos' event parser of the producer is wrapped (orchestration.final_node_events_only)."""
    tasks = dagbag["dags"]["ss4gl_nightly"]["tasks"]
    assert tasks["dbt.dbt_producer_watcher"]["parser"] == "parse_final"


def test_node_progress_events_never_reach_the_xcom_parser():
    """Real dbt events as Cosmos serialises them: a node's start, compile and execute events are dropped, its end
    and every other event pass."""
    from dbt.events.types import MainReportVersion, NodeCompiling, NodeExecuting, NodeFinished, NodeStart
    from dbt_common.events.base_types import msg_from_base_event
    from google.protobuf.json_format import MessageToJson

    from ingest.orchestration import final_node_events_only

    node = {"unique_id": "model.ss4gl.mart_cluster_kpis"}
    events = [
        MainReportVersion(version="1.11", log_version=3),
        NodeStart(node_info={**node, "node_status": "started"}),
        NodeCompiling(node_info={**node, "node_status": "compiling"}),
        NodeExecuting(node_info={**node, "node_status": "executing"}),
        NodeFinished(node_info={**node, "node_status": "success"}),
    ]
    seen: list[str] = []
    parse = final_node_events_only(lambda line, extra: seen.append(json.loads(line)["info"]["name"]))
    for event in events:
        parse(MessageToJson(msg_from_base_event(event), preserving_proto_field_name=True), {})
    assert seen == ["MainReportVersion", "NodeFinished"]


def test_tasks_go_to_the_queues_of_their_kind(dagbag, tmp_path):
    """SS4GL_QUEUES routes tasks by kind (Celery queues: e.g. the extracts to workers with network access); without
    it every task is on Airflow's default queue."""
    assert {t["queue"] for t in dagbag["dags"]["ss4gl_nightly"]["tasks"].values()} == {"default"}
    routed = parse(tmp_path, SS4GL_QUEUES=json.dumps({"extract": "ingest", "dbt": "transform"}))
    queues = {k: v["queue"] for k, v in routed["dags"]["ss4gl_nightly"]["tasks"].items()}
    assert {k for k, q in queues.items() if q == "ingest"} == {"eurostat.extract", "surveys.extract"}
    transform = {k for k, q in queues.items() if q == "transform"}
    assert {"dbt_needed", "build_docs", "dbt.dbt_producer_watcher", "dbt.mart_partnership_indicators.run"} <= transform
    assert all(k.startswith("dbt") or k == "build_docs" for k in transform), transform
    assert queues["eurostat.validate"] == queues["publish"] == "default"

    broken = parse(tmp_path, SS4GL_QUEUES=json.dumps({"extracts": "ingest"}))
    assert "SS4GL_QUEUES names unknown kinds ['extracts']" in " ".join(broken["errors"].values())
