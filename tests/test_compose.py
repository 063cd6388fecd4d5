"""docker-compose.yml: valid for docker-compose, and it carries the services and env the DAGs need."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
REQUIRED_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-db",
    "warehouse",
    "redis",
}
# Environment names the DAGs and the `ingest` package read, identical to local mode.
REQUIRED_ENV = {
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW_CONN_WAREHOUSE",
    "SS4GL_HOME",
    "SS4GL_PSEUDONYM_KEY",
    "SURVEY_INBOX",
    "EUROSTAT_BASE_URL",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CELERY__BROKER_URL",
}


def _resolved() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("SS4GL_REQUIRE_COMPOSE"):
            pytest.fail("docker-compose is required here (SS4GL_REQUIRE_COMPOSE=1) but not installed")
        return yaml.safe_load(COMPOSE.read_text())  # anchors and merges resolved by PyYAML
    out = subprocess.run(
        [exe, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "WAREHOUSE_PASSWORD": "x", "AIRFLOW_JWT_SECRET": "x"},
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


@pytest.fixture(scope="module")
def compose() -> dict:
    return _resolved()


def test_services_present(compose):
    assert REQUIRED_SERVICES <= set(compose["services"])


def test_airflow_services_share_env_and_image(compose):
    for name in REQUIRED_SERVICES:
        if not name.startswith("airflow-") or name == "airflow-db":
            continue
        svc = compose["services"][name]
        assert svc["image"].startswith("apache/airflow:3.3"), name
        env = svc["environment"]
        missing = REQUIRED_ENV - set(env)
        assert not missing, f"{name} lacks {missing}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
        assert "@warehouse:5432/" in env["AIRFLOW_CONN_WAREHOUSE"]


def test_warehouse_is_separate_from_airflow_metadata(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert "@airflow-db/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert compose["services"]["warehouse"]["image"].startswith("postgres:")


def test_no_secrets_in_file():
    text = COMPOSE.read_text()
    assert "SS4GL_PSEUDONYM_KEY: ${SS4GL_PSEUDONYM_KEY:-}" in text  # from .env, never a literal
