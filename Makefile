# The two commands: `make run` serves siyu on the embedded database (with a demo workspace); `make test` runs the whole suite.
# Both work on a fresh clone of a bare machine: they create .venv and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
PYTEST_WORKERS ?= 2

.PHONY: run run-empty test chromium install lint typecheck test-sqlite test-postgres bench migrate worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEPS)

install: $(DEPS)

# `make run` builds the demo workspace once (see docs/en/demo.md); `make run-empty` or SIYU_DEMO=0 skips it.
SIYU_DEMO ?= 1

run: install
	$(BIN)/siyu migrate
	@if [ "$(SIYU_DEMO)" != "0" ]; then $(BIN)/siyu demo --if-missing; fi
	$(BIN)/siyu serve --with-worker

run-empty: install
	$(BIN)/siyu migrate
	$(BIN)/siyu serve --with-worker

migrate: install
	$(BIN)/siyu migrate

worker: install
	$(BIN)/siyu worker

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

test-sqlite: install
	SIYU_TEST_BACKEND=sqlite $(BIN)/pytest -n $(PYTEST_WORKERS) -q

# Runs the suite again on PostgreSQL whenever one is reachable at SIYU_TEST_POSTGRES_URL.
test-postgres: install
	@if SIYU_TEST_POSTGRES_URL='$(TEST_POSTGRES_URL)' $(BIN)/python tests/postgres_available.py; then \
		SIYU_TEST_BACKEND=postgresql SIYU_TEST_POSTGRES_URL='$(TEST_POSTGRES_URL)' $(BIN)/pytest -n $(PYTEST_WORKERS) -q; \
	else \
		echo "PostgreSQL is not reachable at $(TEST_POSTGRES_URL): the PostgreSQL run is skipped"; \
	fi

# The browser tests drive Debian's chromium (never a downloaded browser): install it when missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: chromium lint typecheck test-sqlite test-postgres

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
