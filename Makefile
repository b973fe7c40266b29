# Two commands for a newcomer: `make run` serves the API, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 4

.PHONY: run test lint format bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed: make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

# DATABASE_URL, else an embedded PostgreSQL whose data stays in .pgdata/ (started and stopped
# with the server): migrate, print the demo client, serve. DEBUG defaults to true here only.
run: $(VENV)/.run-installed
	DEBUG=$${DEBUG:-true} exec $(BIN)/python scripts/run_server.py --bind $(HOST):$(PORT) --workers $(WORKERS)

# PostgreSQL: DATABASE_URL, else 127.0.0.1:5432 (user postgres), else a throwaway embedded one.
test: $(VENV)/.dev-installed
	@# The admin browser tests drive Debian's headless Chromium; installed here when missing (root only).
	@bash scripts/ensure_chromium.sh || echo "warning: Chromium missing, the browser tests will fail" >&2
	$(BIN)/python scripts/test_database.py -- $(BIN)/pytest $(PYTEST_ARGS)

# Ingestion and listing through gunicorn beside raw psycopg, on a fresh database
# (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/amani_bench); docs/benchmarks.md.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# ruff, then the layers of .importlinter (docs/architecture.md): an app imports only the ones below it.
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pgdata staticfiles .pytest_cache .ruff_cache
