# Eyes: `make run` starts it, `make test` tests it. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export EYES_HOME ?= $(CURDIR)/eyes-data

.PHONY: install run test test-fast fuzz bench lint typecheck settings-table chromium wrk models clean

install: $(INSTALLED)

# Re-installs when pyproject.toml changes. torch==2.13.0 is the CPU build that pip finds on disk.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $@

# The backbone exported once to ONNX into the data folder (serve would do it at first start).
models: install
	$(BIN)/eyes models export-backbone

run: install models
	$(BIN)/eyes serve

# Browser tests need Chromium: Debian's package, installed here when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The whole suite on SQLite, then again on PostgreSQL (a fresh database per test).
POSTGRES_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
test: install chromium
	$(BIN)/python -m pytest
	EYES_TEST_DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/python -m pytest -m "not browser and not sqlite" --ignore=tests/ml --ignore=tests/scaleout -p no:cacheprovider

# The fast tier, for a quick loop while editing: the web and the services on a stand-in backbone
# (tests/standin_backbone.py), without torch (tests/conftest.py refuses it, and fails the run if it
# loads), the browser, the real network (`slow`) or the real engines of the scale-out. One
# pytest-xdist worker per core: every test has its own data folder, database and app.
FAST := not browser and not slow and not postgres and not redis and not rabbitmq and not s3
test-fast: install
	$(BIN)/python -m pytest -m "$(FAST)" -n auto -p no:cacheprovider

# Schemathesis over the whole API with many random examples; CI runs a small repeatable set
# (tests/test_security.py, marked slow). A failure prints the curl command that reproduces it.
fuzz: install
	FUZZ_EXAMPLES=$(or $(EXAMPLES),300) $(BIN)/python -m pytest tests/test_security.py -k generated -p no:cacheprovider

lint: install
	$(BIN)/ruff check eyes tests benchmarks
	$(BIN)/ruff format --check eyes tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy eyes

# The README's settings table, regenerated from eyes/config.py (tests/test_docs.py checks it).
settings-table: install
	$(BIN)/python -m eyes.config README.md

# The feed benchmark's load generator: Debian's wrk, installed here when it is missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk for the feed benchmark"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# Each writes its figures into docs/benchmarks.md (load: add --scaleout for the scale-out setup).
bench: install wrk
	$(BIN)/python -m benchmarks.serving
	$(BIN)/python -m benchmarks.feed
	$(BIN)/python -m benchmarks.learning
	$(BIN)/python -m benchmarks.load
	$(BIN)/python -m benchmarks.similar

clean:
	rm -rf $(VENV) build *.egg-info
