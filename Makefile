# The two commands a newcomer types: `make demo` (the main job end to end on the embedded
# default) and `make test` (lint + tests). Both create .venv from requirements.lock when needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser libraries of the GX Data Docs, vendored so the pages render offline (npm, pinned by lock)
DOCS := expectations/datadocs
DOCS_STAMP := $(DOCS)/node_modules/.installed

export GX_ANALYTICS_ENABLED := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DO_NOT_TRACK := 1

.PHONY: demo test lint sqllint pytest check sshd browser lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	# --compile-bytecode: every Airflow task is a new Python process; without .pyc files (and
	# with PYTHONDONTWRITEBYTECODE set, as on CI) each would compile its imports from source
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

$(DOCS_STAMP): $(DOCS)/package.json $(DOCS)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(DOCS) && npm ci --ignore-scripts --silent && touch node_modules/.installed; \
	else \
		echo "WARNING: npm not found: GX Data Docs will load their scripts from public CDNs"; \
	fi

demo: $(STAMP) $(DOCS_STAMP)
	$(BIN)/campusdx demo

test: lint sqllint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Models are linted as rendered SQL (macros are checked through the models that call them).
sqllint: $(STAMP)
	cd dbt_project && ../$(BIN)/sqlfluff lint models --processes 1

pytest: $(STAMP) $(DOCS_STAMP) sshd browser
	$(BIN)/python -m pytest

# The fast inner loop: every test except the slow ones (marker `slow`: those needing a
# whole-pipeline build or the demo, which `make test` runs too), one pytest-xdist worker per
# core, each taking the next test when it is free. `make test` stays one process: its session
# builds and end-to-end runs are made once, in the background, for every test that reads them.
check: $(STAMP) $(DOCS_STAMP) sshd browser
	$(BIN)/python -m pytest -m "not slow" -n logical --dist worksteal

# OpenSSH for the SFTP gateway's tests (installed from Debian's packages where missing)
sshd:
	@scripts/install-openssh.sh

# Headless Chromium and a CJK font for the sharing service's browser test (Debian's packages)
browser:
	@scripts/install-browser.sh

# Re-resolve the pinned set after editing pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf var dbt_project/target dbt_project/logs $(DOCS)/node_modules
