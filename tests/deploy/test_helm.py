"""deploy/: the Helm values for the official Airflow chart and the Kubernetes objects beside them, checked offline.

Kubernetes objects (and the KubernetesExecutor pod template inside the values) validate against the Kubernetes
schemas shipped by kubernetes-validate (strict: unknown fields fail); the values use only keys the chart knows; the
executor, image, storage and secrets are the ones SS4GL needs; every Secret they name is defined in the example
manifests, which hold `change-me` placeholders only.
"""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ingest.orchestration import EUROSTAT_POOL

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VALUES = DEPLOY / "helm" / "values.yaml"
SECRETS = DEPLOY / "k8s" / "secrets.example.yaml"
INIT_JOB = DEPLOY / "k8s" / "ss4gl-init-job.yaml"
DOCKERFILE = REPO / "Dockerfile"
# The oldest Kubernetes still in wide use and the newest the installed schemas know.
K8S_VERSIONS = ("1.31", kubernetes_validate.latest_version())
PLACEHOLDER = "change-me"

# Top-level keys of the official chart (apache-airflow/airflow), as listed by its values.schema.json / values.yaml
# (apache/airflow chart/, the 1.19 development line, defaultAirflowTag 3.0.5). The chart does not reject an unknown
# top-level key, it ignores it: a typo here would silently drop a setting.
CHART_TOP_LEVEL_KEYS = frozenset(
    """
    fullnameOverride nameOverride useStandardNaming revisionHistoryLimit devMode uid gid securityContext
    securityContexts containerLifecycleHooks airflowHome defaultAirflowRepository defaultAirflowTag
    defaultAirflowDigest airflowVersion images nodeSelector affinity tolerations topologySpreadConstraints
    schedulerName labels ingress networkPolicies airflowPodAnnotations airflowConfigAnnotations airflowLocalSettings
    rbac executor allowPodLaunching allowJobLaunching env volumes volumeMounts secret enableBuiltInSecretEnvVars
    priorityClasses extraSecrets extraConfigMaps extraEnv extraEnvFrom data fernetKey fernetKeySecretName
    fernetKeySecretAnnotations apiSecretKey apiSecretAnnotations apiSecretKeySecretName jwtSecret jwtSecretAnnotations
    jwtSecretName webserverSecretKey webserverSecretAnnotations webserverSecretKeySecretName kerberos workers
    scheduler createUserJob migrateDatabaseJob apiServer webserver triggerer dagProcessor flower statsd pgbouncer
    redis registry elasticsearch opensearch ports quotas limits cleanup postgresql config multiNamespaceMode
    podTemplate dags logs
    """.split()
)
# Nested keys used by values.yaml, each checked in the same chart version (free-form values are not descended into).
CHART_NESTED_KEYS = frozenset(
    {
        "images.airflow",
        "images.airflow.pullPolicy",
        "dags.mountPath",
        "dags.persistence",
        "dags.persistence.enabled",
        "dags.gitSync",
        "dags.gitSync.enabled",
        "data.metadataSecretName",
        "postgresql.enabled",
        "redis.enabled",
        "webserver.defaultUser",
        "webserver.defaultUser.enabled",
        "workers.serviceAccount",
        "workers.serviceAccount.create",
        "workers.serviceAccount.annotations",
    }
)
# Values that are Kubernetes objects, airflow.cfg sections or templated strings, not chart keys.
FREE_FORM = {"env", "secret", "extraEnv", "extraEnvFrom", "volumes", "volumeMounts", "config", "podTemplate"}
# Chart helpers the templated values may use, with what they render to for release `airflow`.
TEMPLATE_EXPRESSIONS = {
    "{{ .Release.Name }}": "airflow",
    '{{ include "worker.serviceAccountName" . }}': "airflow-worker",
    '{{ include "airflow_config" . }}': "airflow-config",
    '{{ include "airflow.fullname" . }}': "airflow",
    "{{ .Values.ports.apiServer }}": "8080",
}
# Secret names the chart reads and the key it reads from each (chart templates/_helpers.yaml).
CHART_SECRET_KEYS = {
    ("data", "metadataSecretName"): "connection",
    ("fernetKeySecretName",): "fernet-key",
    ("apiSecretKeySecretName",): "api-secret-key",
    ("jwtSecretName",): "jwt-secret",
    ("webserverSecretKeySecretName",): "webserver-secret-key",
}
# Inline secret values the chart would accept: all must stay unset.
INLINE_SECRET_VALUES = ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey")
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)|^AIRFLOW_CONN_", re.IGNORECASE)
# What a task needs from its environment (the DAGs and the `ingest` package read these).
TASK_ENV = {
    "SS4GL_STORAGE",
    "SURVEY_INBOX",
    "AIRFLOW_CONN_WAREHOUSE",
    "SS4GL_PSEUDONYM_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _image_env(name: str) -> str | None:
    """A variable the Dockerfile sets (ENV), if the Dockerfile is there and sets it."""
    if not DOCKERFILE.exists():
        return None
    match = re.search(rf"\b{name}=(\S+)", DOCKERFILE.read_text())
    return match[1] if match else None


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def secrets() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in _docs(SECRETS) if doc["kind"] == "Secret"}


def _image(values: dict) -> str:
    repository = values["images"]["airflow"].get("repository") or values["defaultAirflowRepository"]
    tag = values["images"]["airflow"].get("tag") or values["defaultAirflowTag"]
    return f"{repository}:{tag}"


def _render(text: str, values: dict) -> str:
    """What the chart's `tpl` makes of a templated value for release `airflow` (only the known helpers)."""
    known = {**TEMPLATE_EXPRESSIONS, '{{ template "pod_template_image" . }}': _image(values)}
    for expression, rendered in known.items():
        text = text.replace(expression, rendered)
    leftover = re.findall(r"{{.*?}}", text)
    assert not leftover, f"template expressions the test does not know (check the chart has them): {leftover}"
    return text


@pytest.fixture(scope="module")
def pod(values: dict) -> dict:
    return yaml.safe_load(_render(values["podTemplate"], values))


def _base(pod: dict) -> dict:
    (base,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    return base


def _bytes(quantity: str) -> float:
    match = QUANTITY.match(str(quantity))
    assert match, f"not a Kubernetes quantity: {quantity}"
    return float(match[1]) * UNITS[match[2]]


def _secret_refs(obj) -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef in a Kubernetes object."""
    found: set[tuple[str, str]] = set()
    if isinstance(obj, dict):
        ref = obj.get("secretKeyRef")
        if isinstance(ref, dict):
            found.add((ref["name"], ref["key"]))
        for value in obj.values():
            found |= _secret_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= _secret_refs(item)
    return found


def _env_from_secrets(env_from: list[dict] | None) -> set[str]:
    return {item["secretRef"]["name"] for item in env_from or [] if "secretRef" in item}


def _keys(secret_names: set[str], secrets: dict[str, dict]) -> set[str]:
    """The variables an envFrom of these Secrets defines (their keys in the example manifests)."""
    return {key for name in secret_names for key in secrets[name]["stringData"]}


def _manifests() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted(DEPLOY.rglob("*.yaml")) if path != VALUES for doc in _docs(path)]


def _validate(doc: dict, where: str) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            field = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where} {doc['kind']} (Kubernetes {version} schema): {field}: {exc.message}")


def test_manifests_validate_against_kubernetes_schemas():
    manifests = _manifests()
    assert {path.name for path, _ in manifests} >= {SECRETS.name, INIT_JOB.name}
    for path, doc in manifests:
        _validate(doc, f"{path.relative_to(REPO)} {doc['metadata']['name']}")


def test_pod_template_is_a_valid_worker_pod(pod: dict):
    _validate(pod, "values.yaml podTemplate")
    assert pod["kind"] == "Pod" and pod["spec"]["restartPolicy"] == "Never"
    base = _base(pod)  # the KubernetesExecutor puts the task into the container named `base`
    resources = base["resources"]
    assert _bytes(resources["limits"]["memory"]) >= _bytes(resources["requests"]["memory"]) >= 2**30
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert base["securityContext"]["allowPrivilegeEscalation"] is False


def test_ss4gl_home_is_the_images_own_per_pod_folder(values: dict, pod: dict):
    """SS4GL_HOME holds the image's dbt manifest: set by the image only, and no volume hides it (or any part of it)."""
    home = _image_env("SS4GL_HOME") or "/opt/ss4gl-state"
    containers = [_base(pod)]
    for _, doc in _manifests():
        containers += doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    mounts = [m["mountPath"] for m in values.get("volumeMounts") or []]
    mounts += [m["mountPath"] for c in containers for m in c.get("volumeMounts", [])]
    hiding = [m for m in mounts if home == m or home.startswith(m.rstrip("/") + "/") or m.startswith(home + "/")]
    assert not hiding, f"volumes mounted on SS4GL_HOME ({home}): {hiding}"
    names = {e["name"] for e in values["env"]} | {e["envName"] for e in values["secret"]}
    names |= {e["name"] for c in containers for e in c.get("env", [])}
    assert "SS4GL_HOME" not in names, "SS4GL_HOME is the image's (Dockerfile); a different value loses the manifest"
    # Per-pod scratch, bounded; nothing persistent: no volume of a task pod outlives it.
    assert _base(pod)["resources"]["limits"]["ephemeral-storage"]
    assert all(set(v) & {"emptyDir", "configMap"} for v in pod["spec"]["volumes"])


def test_values_use_only_keys_the_chart_knows(values: dict):
    unknown = set(values) - CHART_TOP_LEVEL_KEYS
    assert not unknown, f"top-level keys the chart does not know (it would ignore them): {sorted(unknown)}"

    def paths(tree: dict, prefix: str) -> set[str]:
        found = set()
        for key, value in tree.items():
            path = f"{prefix}.{key}"
            found.add(path)
            if isinstance(value, dict):
                found |= paths(value, path)
        return found

    nested = set()
    for key, value in values.items():
        if key not in FREE_FORM and isinstance(value, dict):
            nested |= paths(value, key)
    unchecked = nested - CHART_NESTED_KEYS
    assert not unchecked, f"nested keys not checked against the chart: {sorted(unchecked)}"


def test_template_expressions_are_known_chart_helpers(values: dict):
    text = VALUES.read_text()
    uncommented = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    _render(uncommented, values)


def test_executor_runs_each_task_in_its_own_pod(values: dict):
    executors = [e.strip() for e in values["executor"].split(",")]
    # CeleryKubernetesExecutor raises on Airflow 3; the hybrid is "CeleryExecutor,KubernetesExecutor" there.
    assert "CeleryKubernetesExecutor" not in executors
    assert "KubernetesExecutor" in executors and set(executors) <= {"KubernetesExecutor", "CeleryExecutor"}


def test_image_is_the_project_image(values: dict):
    image = _image(values)
    repository, tag = image.rsplit(":", 1)
    assert repository.rsplit("/", 1)[-1] == "ss4gl-airflow" and not repository.startswith("apache/airflow")
    assert tag and tag != "latest"
    # The chart's Airflow version is the one the project pins and the image is built from.
    pinned = re.search(r'"apache-airflow==(\d+\.\d+)\.\*"', (REPO / "pyproject.toml").read_text())
    assert pinned, "pyproject.toml no longer pins apache-airflow==X.Y.*: update this check"
    assert values["airflowVersion"].startswith(pinned[1] + "."), f"pyproject pins Airflow {pinned[1]}"
    if DOCKERFILE.exists():
        for base in re.findall(r"apache/airflow:(\d+\.\d+\.\d+)", DOCKERFILE.read_text()):
            assert base == values["airflowVersion"], f"Dockerfile builds on Airflow {base}"
    # Everything else in deploy/ runs the same image.
    for path, doc in _manifests():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            assert container["image"] == image, f"{path.name}: {container['name']} runs {container['image']}"


def test_dags_come_from_the_image(values: dict):
    assert values["dags"]["gitSync"]["enabled"] is False
    assert values["dags"]["persistence"]["enabled"] is False
    # The chart's DAGs folder (default of [core] dags_folder) is the one the image carries and checks.
    assert "dags_folder" not in values["config"].get("core", {})
    assert values["dags"]["mountPath"].endswith("/ingest/_bundled/dags")
    image_dags = _image_env("AIRFLOW__CORE__DAGS_FOLDER")
    if image_dags:
        assert values["dags"]["mountPath"] == image_dags


def test_storage_and_logs_are_object_storage(values: dict):
    env = {e["name"]: e.get("value") for e in values["env"]}
    for name in ("SS4GL_STORAGE", "SURVEY_INBOX"):
        assert re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$)", env[name]), f"{name}={env[name]}"
    assert env["SURVEY_INBOX"].startswith(env["SS4GL_STORAGE"].rstrip("/") + "/")
    logging = values["config"]["logging"]
    assert logging["remote_logging"] == "True" and logging["remote_base_log_folder"].startswith("s3://")


def test_external_metadata_database(values: dict):
    assert values["postgresql"]["enabled"] is False
    assert values["data"]["metadataSecretName"]
    assert "metadataConnection" not in values["data"]


def test_secrets_come_from_kubernetes_secrets(values: dict, secrets: dict[str, dict]):
    for key in INLINE_SECRET_VALUES:
        assert values.get(key) is None, f"{key} is set inline; use {key}SecretName"
    plain = [e["name"] for e in values["env"] if SECRET_NAME.search(e["name"])]
    assert not plain, f"secret-looking variables with inline values: {plain}"
    from_secret = {e["envName"] for e in values["secret"]}
    assert {"AIRFLOW_CONN_WAREHOUSE", "SS4GL_PSEUDONYM_KEY"} <= from_secret
    from_env_from = _keys(_env_from_secrets(yaml.safe_load(values["extraEnvFrom"])), secrets)
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= from_env_from
    for path in CHART_SECRET_KEYS:
        node = values
        for part in path:
            node = node[part]
        assert node, f"{'.'.join(path)} is not set: the chart would generate or inline it"


def test_every_secret_referenced_is_defined(values: dict, pod: dict, secrets: dict[str, dict]):
    refs = {(e["secretName"], e["secretKey"]) for e in values["secret"]}
    for path, key in CHART_SECRET_KEYS.items():
        node = values
        for part in path:
            node = node[part]
        refs.add((node, key))
    refs |= _secret_refs(pod)
    whole = _env_from_secrets(yaml.safe_load(values["extraEnvFrom"])) | _env_from_secrets(_base(pod).get("envFrom"))
    for _, doc in _manifests():
        refs |= _secret_refs(doc)
    missing = {(name, key) for name, key in refs if key not in secrets.get(name, {}).get("stringData", {})}
    assert not missing, f"Secrets/keys referenced but not in {SECRETS.name}: {sorted(missing)}"
    assert whole <= set(secrets), f"envFrom Secrets not in {SECRETS.name}: {sorted(whole - set(secrets))}"


def test_task_pods_get_what_the_other_components_get(values: dict, pod: dict, secrets: dict[str, dict]):
    base = _base(pod)
    pod_env = {e["name"]: e for e in base["env"]}
    pod_names = set(pod_env) | _keys(_env_from_secrets(base.get("envFrom")), secrets)
    chart_env = {e["name"]: e["value"] for e in values["env"]}
    chart_names = set(chart_env) | {e["envName"] for e in values["secret"]}
    chart_names |= _keys(_env_from_secrets(yaml.safe_load(values["extraEnvFrom"])), secrets)
    assert TASK_ENV <= chart_names
    assert chart_names <= pod_names, f"missing in podTemplate: {sorted(chart_names - pod_names)}"
    for name, value in chart_env.items():
        assert pod_env[name].get("value") == value, f"{name}: podTemplate {pod_env[name].get('value')!r} != {value!r}"
    for item in values["secret"]:
        ref = pod_env[item["envName"]]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (item["secretName"], item["secretKey"])
    # Least privilege: task pods never see the metadata database (Airflow 3 tasks use the API server).
    metadata = values["data"]["metadataSecretName"]
    assert all(name != metadata for name, _ in _secret_refs(pod))


def test_example_secrets_hold_placeholders_only(secrets: dict[str, dict]):
    assert secrets
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: use stringData with {PLACEHOLDER} placeholders"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in str(value), f"{name}.{key} is not a {PLACEHOLDER} placeholder"


def test_no_literal_secret_anywhere_in_deploy():
    credentials = re.compile(r"://[^\s/:@'\"]+:([^\s@'\"]+)@")
    placeholder = re.compile(rf"^({re.escape(PLACEHOLDER)}|<[^>]*>|…)$")
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text()
        for password in credentials.findall(text):
            assert placeholder.match(password), f"{path.relative_to(REPO)}: a URL with a password"
        assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), f"{path.relative_to(REPO)}: an AWS key id"
        assert "PRIVATE KEY-----" not in text, f"{path.relative_to(REPO)}: a private key"


def test_init_job_sets_the_eurostat_pool():
    (job,) = [doc for doc in _docs(INIT_JOB) if doc["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = " ".join(container.get("command", []) + container.get("args", []))
    assert re.search(rf"airflow pools set {EUROSTAT_POOL} 2\b", script)
    assert "ss4gl warehouse migrate" in script
