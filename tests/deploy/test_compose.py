"""docker-compose.yml and Dockerfile: valid for docker-compose, a stack that starts from a fresh clone.

The compose file is checked as docker-compose resolves it (``docker-compose config``; without docker-compose, the
file as PyYAML reads it, unless SS4GL_REQUIRE_COMPOSE is set, as in CI); the Dockerfile and .dockerignore as text.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
REQUIRED_SERVICES = AIRFLOW_SERVICES | {"airflow-db", "warehouse", "redis", "metabase"}
# Services that run once and exit (no healthcheck, no restart): the others run for good.
ONE_SHOT = {"airflow-init"}
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
    "SS4GL_STORAGE",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
}
# Every variable the file requires (${VAR:?…}), with a dummy value for `docker-compose config`.
DUMMY_ENV = {
    name: "x"
    for name in (
        "WAREHOUSE_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_ADMIN_PASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )
}
# What the wheel is built from: .dockerignore must keep it in the build context.
BUILD_INPUTS = ("pyproject.toml", "README.md", "requirements.lock", "ingest", "dags", "dbt_project", "expectations")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|_PASS$|SECRET|_KEY$|_KEY_ID$|TOKEN")


# ------------------------------------------------------------------------------------------------- helpers
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
        env={**os.environ, **DUMMY_ENV},
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def _raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _text(value) -> str:
    """A command, entrypoint or healthcheck test as one string."""
    if isinstance(value, dict):
        value = value.get("test")
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value or "")


def _mounts(svc: dict) -> list[tuple[str, str]]:
    """(source, target) of each volume; short (``src:dst[:mode]``) or long syntax."""
    out = []
    for vol in svc.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol.get("source") or ""), str(vol["target"])))
        else:
            parts = str(vol).split(":")
            out.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return out


def _container_ports(svc: dict) -> set[int]:
    ports = set()
    for port in (svc.get("ports") or []) + (svc.get("expose") or []):
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def _build_context(svc: dict) -> Path | None:
    build = svc.get("build")
    if build is None:
        return None
    context = build if isinstance(build, str) else build.get("context", ".")
    return (REPO / context).resolve()


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    out = []
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _dockerfile_instructions():
        if word == "ENV":
            for item in shlex.split(rest):
                if "=" in item:
                    key, value = item.split("=", 1)
                    env[key] = value
    return env


def _lock_pin(package: str) -> str:
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in requirements.lock")


@pytest.fixture(scope="module")
def compose() -> dict:
    return _resolved()


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


# ------------------------------------------------------------------------------------------------- services
def test_services_present(services):
    assert REQUIRED_SERVICES <= set(services)


def test_airflow_services_share_env(services):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        missing = REQUIRED_ENV - set(env)
        assert not missing, f"{name} lacks {missing}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
        assert "@warehouse:5432/" in env["AIRFLOW_CONN_WAREHOUSE"]


def test_warehouse_is_separate_from_airflow_metadata(services):
    env = _env(services["airflow-scheduler"])
    assert "@airflow-db/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert services["warehouse"]["image"].startswith("postgres:")


def test_every_airflow_service_runs_the_image_built_here(services):
    """One image, built from this repository's Dockerfile; nothing installed at start, no checkout mounted."""
    images = {services[name].get("image") for name in AIRFLOW_SERVICES}
    assert len(images) == 1 and None not in images, f"Airflow services run different images: {images}"
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert _build_context(svc) == REPO, f"{name} is not built from the repository (build: .)"
        dockerfile = svc["build"].get("dockerfile", "Dockerfile") if isinstance(svc["build"], dict) else "Dockerfile"
        assert Path(dockerfile).name == "Dockerfile", name
        assert not any(k.startswith("_PIP_ADDITIONAL_REQUIREMENTS") for k in _env(svc)), name
        for source, target in _mounts(svc):
            # Named volumes only: a host path (the checkout, ./logs, …) would make the stack depend on a clone.
            assert source and not source.startswith((".", "/", "~")), f"{name} bind-mounts {source} on {target}"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE.read_text()


def test_volumes_never_hide_the_manifest_of_the_image(services):
    """The installed package reads the dbt manifest at $SS4GL_HOME/dbt/manifest/manifest.json (ingest.config), in
    the image: a volume on SS4GL_HOME (or above it) would keep serving the manifest of the first image."""
    for name in AIRFLOW_SERVICES:
        home = PurePosixPath(_env(services[name])["SS4GL_HOME"])
        manifest_dir = home / "dbt" / "manifest"
        for _source, target in _mounts(services[name]):
            target = PurePosixPath(target)
            assert not (target == manifest_dir or target in manifest_dir.parents), f"{name}: volume on {target}"


# ------------------------------------------------------------------------------------------------- Dockerfile
def test_dockerfile_extends_the_airflow_image_the_lock_pins():
    froms = [rest.split()[0] for word, rest in _dockerfile_instructions() if word == "FROM"]
    assert froms, "Dockerfile has no FROM"
    airflow = _lock_pin("apache-airflow")
    assert airflow.startswith("3.3."), airflow
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.search(r">=\s*3\.(\d+)", python).group(1)
    for image in froms:
        assert image == f"apache/airflow:{airflow}-python3.{minor}", f"FROM {image}: the lock pins {airflow}"


def test_dockerfile_installs_the_lock_and_the_project_and_builds_the_manifest():
    runs = [rest for word, rest in _dockerfile_instructions() if word == "RUN"]
    installs = [
        i
        for i, run in enumerate(runs)
        if "pip install" in run and re.search(r"(-r|-c|--constraint|--requirement)[ =]\S*requirements\.lock", run)
    ]
    assert installs, "no RUN installs requirements.lock"
    project = [i for i, run in enumerate(runs) if re.search(r"pip (install|wheel)\b.*(ss4gl-\S*\.whl|\s\.(\s|$))", run)]
    assert project, "no RUN installs the project (its wheel or `.`)"
    assert not any("pip install -e" in run or "--editable" in run for run in runs), "the project is installed editable"
    manifest = [i for i, run in enumerate(runs) if "ss4gl dbt manifest" in run]
    assert manifest and manifest[0] > max(installs), "the dbt manifest is not built after the install"
    # The build fails unless the installed product finds the manifest and the DAGs folder is the bundled one.
    check = runs[manifest[0]]
    assert "DBT_MANIFEST" in check and "DAGS_DIR" in check and "AIRFLOW__CORE__DAGS_FOLDER" in check


def test_image_and_compose_agree_on_state_and_dags(services):
    env = _dockerfile_env()
    assert {"SS4GL_HOME", "AIRFLOW__CORE__DAGS_FOLDER"} <= set(env), "Dockerfile must set both (ENV)"
    # The DAGs of the installed wheel: ingest/_bundled/dags (pyproject.toml package-dir), under the image's Python.
    package_dir = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert package_dir["ingest._bundled.dags"] == "dags"
    dags = PurePosixPath(env["AIRFLOW__CORE__DAGS_FOLDER"])
    assert dags.parts[-3:] == ("ingest", "_bundled", "dags") and "site-packages" in dags.parts, dags
    from_tag = next(rest.split()[0] for word, rest in _dockerfile_instructions() if word == "FROM")
    assert f"python{from_tag.rsplit('-python', 1)[1]}" in dags.parts, (dags, from_tag)
    for name in AIRFLOW_SERVICES:
        compose_env = _env(services[name])
        assert compose_env["SS4GL_HOME"] == env["SS4GL_HOME"], name
        assert compose_env["AIRFLOW__CORE__DAGS_FOLDER"] == env["AIRFLOW__CORE__DAGS_FOLDER"], name


def test_dockerignore_keeps_state_and_secrets_out_and_the_sources_in():
    patterns = [
        line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    for required in (".venv", ".state", ".git", "dbt_project/target", "logs", ".env"):
        assert required in patterns, f".dockerignore lacks {required}"
    for path in BUILD_INPUTS:
        hits = [p for p in patterns if fnmatch.fnmatch(path, p) and not p.startswith("!")]
        assert not hits, f".dockerignore drops {path} ({hits}), which the wheel is built from"


# ------------------------------------------------------------------------------------------------- start-up
def test_airflow_init_migrates_sets_the_pool_and_checks_the_manifest(services):
    init = services["airflow-init"]
    script = _text(init.get("command"))
    steps = {
        "manifest": script.find("DBT_MANIFEST"),
        "db": script.find("airflow db migrate"),
        "pool": script.find("airflow pools set eurostat 2"),
        "warehouse": script.find("ss4gl warehouse migrate"),
    }
    missing = [k for k, at in steps.items() if at < 0]
    assert not missing, f"airflow-init does not run {missing}"
    assert steps["manifest"] < steps["db"], "the manifest check should fail the init before any migration"
    assert "exit" in script[steps["manifest"] : steps["db"]], "a missing manifest must fail the init"
    assert "set -e" in script, "a failing step must fail the init (set -e)"
    assert "restart" not in init or init["restart"] == "no"
    for name in AIRFLOW_SERVICES - ONE_SHOT:
        dep = (services[name].get("depends_on") or {}).get("airflow-init") or {}
        assert dep.get("condition") == "service_completed_successfully", name


def test_long_running_services_have_healthchecks_and_restart(services):
    for name, svc in services.items():
        if name in ONE_SHOT:
            continue
        assert _text(svc.get("healthcheck")), f"{name} has no healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped"), f"{name} restart: {svc.get('restart')}"
    checks = {name: _text(services[name]["healthcheck"]) for name in AIRFLOW_SERVICES - ONE_SHOT}
    assert re.search(r"localhost:8080/api/v2/(version|monitor/health)", checks["airflow-apiserver"])
    assert "localhost:8974/health" in checks["airflow-scheduler"]
    assert _env(services["airflow-scheduler"])["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"].lower() == "true"
    assert "inspect ping" in checks["airflow-worker"]
    assert "airflow jobs check --job-type TriggererJob" in checks["airflow-triggerer"]
    assert "airflow jobs check --job-type DagProcessorJob" in checks["airflow-dag-processor"]


# ------------------------------------------------------------------------------------------------- storage, BI, login
def test_object_store_serves_ss4gl_storage(services):
    env = _env(services["airflow-worker"])
    assert env["SS4GL_STORAGE"].startswith("s3://") and len(env["SS4GL_STORAGE"]) > len("s3://")
    endpoint = urlparse(env["AWS_ENDPOINT_URL"])
    store = services.get(endpoint.hostname)
    assert store is not None, f"AWS_ENDPOINT_URL {env['AWS_ENDPOINT_URL']} names no service"
    port = endpoint.port or 80
    assert port in _container_ports(store) or f"port={port}" in _text(store.get("command")), (port, store)
    image = store["image"]
    assert ":" in image and not image.endswith(":latest"), f"object store image not pinned: {image}"
    assert any(source for source, _target in _mounts(store)), "the object store keeps its data in no volume"
    store_env = _env(store)
    for name in AIRFLOW_SERVICES:
        svc_env = _env(services[name])
        assert svc_env["SS4GL_STORAGE"] == env["SS4GL_STORAGE"], name
        assert svc_env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"], name
        assert svc_env["AWS_DEFAULT_REGION"]
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert svc_env[key] == store_env.get(key), f"{name} and the object store disagree on {key}"
    # Some service creates the bucket before the Airflow services start (here: airflow-init).
    bucket = env["SS4GL_STORAGE"][len("s3://") :].split("/")[0]
    init = _text(services["airflow-init"].get("command"))
    assert "SS4GL_STORAGE" in init or bucket in init, "nothing creates the bucket of SS4GL_STORAGE"
    dep = (services["airflow-init"].get("depends_on") or {}).get(endpoint.hostname) or {}
    assert dep.get("condition") == "service_healthy"


def test_metabase_keeps_its_application_database_in_postgres(compose, services):
    env = _env(services["metabase"])
    assert env.get("MB_DB_TYPE") == "postgres"
    for key in ("MB_DB_DBNAME", "MB_DB_PORT", "MB_DB_USER", "MB_DB_PASS", "MB_DB_HOST"):
        assert key in env, f"metabase lacks {key}"
    db = services.get(env["MB_DB_HOST"])
    assert db is not None, f"MB_DB_HOST {env['MB_DB_HOST']} is no service"
    assert db["image"].startswith("postgres:")
    data = [source for source, target in _mounts(db) if target == "/var/lib/postgresql/data"]
    assert data and data[0] in (compose.get("volumes") or {}), "Metabase's database keeps its data in no volume"
    db_env = _env(db)
    assert db_env["POSTGRES_DB"] == env["MB_DB_DBNAME"] and db_env["POSTGRES_USER"] == env["MB_DB_USER"]
    assert db_env["POSTGRES_PASSWORD"] == env["MB_DB_PASS"]
    assert (services["metabase"].get("depends_on") or {}).get(env["MB_DB_HOST"], {}).get("condition") == (
        "service_healthy"
    )


def test_the_airflow_login_is_defined(services):
    """SimpleAuthManager: the users in AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS, their passwords in a file that
    airflow-init writes from .env and the api-server reads (a volume both mount)."""
    api, init = _env(services["airflow-apiserver"]), _env(services["airflow-init"])
    assert api["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert "admin:admin" in api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
    assert api.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False").lower() != "true"
    passwords = PurePosixPath(api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert init["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(passwords)

    def holders(name: str) -> set[str]:
        return {src for src, target in _mounts(services[name]) if PurePosixPath(target) in passwords.parents}

    assert holders("airflow-apiserver") & holders("airflow-init"), (
        "the api-server and airflow-init share no volume holding the passwords file"
    )
    assert "AIRFLOW_ADMIN_PASSWORD" in init and "AIRFLOW_ADMIN_PASSWORD" in _text(services["airflow-init"]["command"])
    # tests/ops copy x-airflow-common's environment into local processes: no container-only passwords file there.
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" not in _raw()["x-airflow-common"]["environment"]


# ------------------------------------------------------------------------------------------------- secrets
def test_no_secrets_in_file():
    text = COMPOSE.read_text()
    assert "SS4GL_PSEUDONYM_KEY: ${SS4GL_PSEUDONYM_KEY:-}" in text  # from .env, never a literal
    # A secret variable is required (${VAR:?…}) or empty by default (${VAR:-}): never a default value in the file.
    for match in re.finditer(r"\$\{(\w+)(:?[-?])?([^}]*)\}", text):
        name, op, default = match.groups()
        if SECRET_NAME.search(name) and op in (":-", "-"):
            assert default == "", f"${{{name}}} has a default in the file: {match.group(0)}"
    raw = _raw()
    envs = {"x-airflow-common": _env(raw["x-airflow-common"])}
    envs.update({name: _env(svc) for name, svc in raw["services"].items()})
    for owner, env in envs.items():
        for key, value in env.items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert re.fullmatch(r"\$\{\w+(:?[-?][^}]*)?\}", value), f"{owner}: {key} is a literal, not from .env"
            for url in re.findall(r"\w[\w+.-]*://[^\s]+", value):
                password = urlparse(url).password
                assert password is None or password.startswith("${"), f"{owner}: {key} has a literal password"
