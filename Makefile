# One place for the commands of the README. Everything installs into .venv (no root, no system services).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATE   ?=
OFFLINE ?=
export OFFLINE
# Test processes (pytest-xdist): each has its own embedded Postgres and state folder; a test file stays on one.
JOBS   ?= 2

.PHONY: help install run test test-fast lint bench compose-config clean-state samples docs-formulas
.DEFAULT_GOAL := help

## List the commands (this help).
help:
	@awk '/^## /{doc = substr($$0, 4); next} /^[a-z-]+:/{if (doc != "") {split($$1, t, ":"); printf "  make %-14s %s\n", t[1], doc}; doc = ""}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	@echo "install: the pinned dependencies of requirements.lock into .venv (uv; the first time downloads about 1 GB: a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv==0.13.9
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Cosmos renders the dbt tasks from this manifest (rebuilt when the dbt project changes).
MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(STAMP) $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print)
	@echo "install: the dbt manifest Cosmos renders the DAG from (dbt parse)"
	$(BIN)/ss4gl dbt manifest

## Create .venv (uv, requirements.lock); the dbt manifest; local Airflow migrated, warehouse and dbt parse prepared.
install: $(STAMP) $(MANIFEST)
	@$(BIN)/ss4gl run --prepare-only

## Run the nightly pipeline once (DATE=YYYY-MM-DD, default yesterday; OFFLINE=1 replays bundled samples).
run: install
	$(BIN)/ss4gl run $(if $(DATE),--date $(DATE))

## The test suite on throwaway embedded Postgres servers (plus loopback replay servers), JOBS=2 processes.
test: install
	$(BIN)/pytest -n $(JOBS) --dist loadfile

## Unit and component tests (pytest -m "not slow": no whole-DAG or stage runs, no scheduler, no wheel build).
test-fast: install
	$(BIN)/pytest -n $(JOBS) --dist loadfile -m "not slow"

## Quality gate (first step of .ci/run; pre-commit too): ruff lint + format, sqlfluff (dbt), import contracts.
lint: $(STAMP)
	$(BIN)/ruff check ingest dags tests bench tools
	$(BIN)/ruff format --check ingest dags tests bench tools
	cd dbt_project && ../$(BIN)/sqlfluff lint --nocolor models macros snapshots tests
	$(BIN)/pytest -q -p no:cacheprovider tests/test_import_contracts.py

## Rewrite the formula sections of README.md and dbt_project/README.md from the model YAML (--check: report drift).
docs-formulas: $(STAMP)
	$(BIN)/python tools/formulas.py

## Benchmarks; results and commands in bench/RESULTS.md.
bench: install
	$(BIN)/python -m bench

## Regenerate the bundled synthetic samples (deterministic; tools/).
samples: install
	$(BIN)/python -m tools.eurostat_samples
	$(BIN)/python -m tools.survey_samples

## Validate docker-compose.yml (docker-compose, no engine needed).
compose-config:
	docker-compose -f docker-compose.yml config -q

## Stop the embedded warehouse and delete all local state (.state/).
clean-state:
	-$(BIN)/ss4gl warehouse stop
	rm -rf .state
