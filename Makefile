# One place for the commands of the README. Everything installs into .venv (no root, no system services).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATE   ?=
OFFLINE ?=
export OFFLINE

.PHONY: install run test lint bench compose-config clean-state samples docs-formulas

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv==0.13.9
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Cosmos renders the dbt tasks from this manifest (rebuilt when the dbt project changes).
MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(STAMP) $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print)
	$(BIN)/ss4gl dbt manifest

install: $(STAMP) $(MANIFEST)

## Run the nightly pipeline once (DATE=YYYY-MM-DD, default yesterday; OFFLINE=1 replays bundled samples).
run: install
	$(BIN)/ss4gl run $(if $(DATE),--date $(DATE))

## The test suite on a throwaway embedded Postgres (plus loopback replay servers).
test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check ingest dags tests bench tools

## Rewrite the formula sections of README.md and dbt_project/README.md from the model YAML (--check: report drift).
docs-formulas: $(STAMP)
	$(BIN)/python tools/formulas.py

bench: install
	$(BIN)/python -m bench

samples: install
	$(BIN)/python -m tools.eurostat_samples
	$(BIN)/python -m tools.survey_samples

compose-config:
	docker-compose -f docker-compose.yml config -q

## Stop the embedded warehouse and delete all local state (.state/).
clean-state:
	-$(BIN)/ss4gl warehouse stop
	rm -rf .state
