# The image every Airflow service of docker-compose.yml runs: Airflow 3.3 (the official image) with this project
# installed from its wheel, its dependencies at the versions of requirements.lock, and the dbt manifest Cosmos renders
# the DAG from, built here. Nothing is installed when a container starts and no checkout is mounted.
#
#   docker compose build          # or: docker build -t ss4gl-airflow:latest .
#
# The Airflow version must be the one requirements.lock pins (tests/deploy/test_compose.py checks it).

# ---- the wheel: `pip install .` gives a working product (the dbt project, the GX suites and the DAGs are bundled)
FROM apache/airflow:3.3.2-python3.11 AS wheel
COPY --chown=airflow:0 . /tmp/ss4gl
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /tmp/ss4gl

# ---- the runtime image
FROM apache/airflow:3.3.2-python3.11

# SS4GL_HOME (ingest.config.state_dir) is per-task scratch in the image's own folder, never a volume: the dbt manifest
# lives in it ($SS4GL_HOME/dbt/manifest/manifest.json is where the installed package reads it), and a volume there
# would hide the manifest of a rebuilt image behind the first one's. What outlives a task is in SS4GL_STORAGE.
# The DAGs folder is the DAGs the wheel carries (ingest.config.DAGS_DIR), checked below.
ENV SS4GL_HOME=/opt/ss4gl-state \
    AIRFLOW__CORE__DAGS_FOLDER=/home/airflow/.local/lib/python3.11/site-packages/ingest/_bundled/dags

USER root
# Writable by the airflow user (compose runs 50000:0). /opt/airflow/auth: the mount point of the volume holding the
# SimpleAuthManager passwords file (a new named volume copies its owner and mode).
RUN mkdir -p /opt/ss4gl "${SS4GL_HOME}" /opt/airflow/auth \
    && chown -R airflow:0 /opt/ss4gl "${SS4GL_HOME}" /opt/airflow/auth \
    && chmod -R g+rwX /opt/ss4gl "${SS4GL_HOME}" \
    && chmod 0770 /opt/airflow/auth
USER airflow

# The project and its runtime dependencies, every version pinned by requirements.lock (used as constraints: the
# lock's dev-only tools are not installed). Airflow stays at the image's version: the lock pins the same one.
COPY --chown=airflow:0 requirements.lock /opt/ss4gl/requirements.lock
COPY --from=wheel --chown=airflow:0 /tmp/dist/ /opt/ss4gl/dist/
RUN pip install --no-cache-dir --constraint /opt/ss4gl/requirements.lock /opt/ss4gl/dist/ss4gl-*.whl

# The dbt manifest, where the installed package reads it; then fail the build unless the installed product finds it
# and the DAGs folder is the bundled one, and the DAG parses from there (no checkout on sys.path: WORKDIR is not
# the source tree).
WORKDIR /opt/airflow
RUN ss4gl dbt manifest \
    && python -c "import os; from pathlib import Path; from ingest import config as c; \
assert not c.CHECKOUT, 'imported a checkout, not the installed package'; \
assert c.DBT_MANIFEST == Path(os.environ['SS4GL_HOME'], 'dbt', 'manifest', 'manifest.json'), c.DBT_MANIFEST; \
assert c.DBT_MANIFEST.is_file(), f'no dbt manifest at {c.DBT_MANIFEST}'; \
assert c.DAGS_DIR.resolve() == Path(os.environ['AIRFLOW__CORE__DAGS_FOLDER']).resolve(), c.DAGS_DIR" \
    && python -c "from airflow.models.dagbag import DagBag; from ingest.config import DAGS_DIR; \
bag = DagBag(dag_folder=str(DAGS_DIR), include_examples=False); \
assert not bag.import_errors and sorted(bag.dag_ids) == ['ss4gl_nightly'], (bag.import_errors, bag.dag_ids)" \
    && rm -rf "${SS4GL_HOME}/logs"
