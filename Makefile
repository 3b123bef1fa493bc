# OuterPark's two commands (see README): `make run` starts everything locally, `make test` runs
# every test. Both set up what they need first; nothing is installed by hand.

PYTHON ?= python3
VENV := .venv
INFRA_VENV := .venv-infra
PY := $(VENV)/bin/python

.PHONY: run test lint setup

run: $(VENV)/.installed
	$(PY) -m devhost $(ARGS)

test: $(VENV)/.installed $(INFRA_VENV)/.installed node_modules/.installed
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

setup: $(VENV)/.installed $(INFRA_VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Infra scanners pin libraries that clash with the app's, so they get a venv of their own.
$(INFRA_VENV)/.installed: requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

# The Cosmos DB REST server the contract suite runs against (tests/cosmos/server.py).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@
