# The two commands a newcomer types: `make demo` (the main job end to end on the embedded
# default) and `make test` (lint + tests). Both create .venv from requirements.lock when needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export GX_ANALYTICS_ENABLED := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DO_NOT_TRACK := 1

.PHONY: demo test lint sqllint pytest lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	# --compile-bytecode: every Airflow task is a new Python process; without .pyc files (and
	# with PYTHONDONTWRITEBYTECODE set, as on CI) each would compile its imports from source
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/campusdx demo

test: lint sqllint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Models are linted as rendered SQL (macros are checked through the models that call them).
sqllint: $(STAMP)
	cd dbt_project && ../$(BIN)/sqlfluff lint models --processes 1

pytest: $(STAMP)
	$(BIN)/python -m pytest

# Re-resolve the pinned set after editing pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf var dbt_project/target dbt_project/logs
