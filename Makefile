# s3ipfs: `make run` starts a local gateway on a local IPFS node; `make test` runs every gate and the suite.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STATE ?= .state/dev

.PHONY: setup run stop test lint typecheck contracts pytest bench clean

setup:
	@bash scripts/setup.sh

run: setup
	@bash scripts/run-local.sh "$(STATE)"

stop:
	@bash scripts/run-local.sh --stop "$(STATE)"

lint: setup
	$(VENV)/bin/ruff check appliance tests bench
	$(VENV)/bin/ruff format --check appliance tests bench

typecheck: setup
	$(VENV)/bin/mypy appliance $(wildcard tui)

contracts: setup
	$(VENV)/bin/lint-imports

pytest: setup
	@bash scripts/run-tests.sh

test: lint typecheck contracts pytest

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf .state .cache .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
