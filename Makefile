# s3ipfs: `make run` starts a local gateway on a local IPFS node; `make test` runs every gate and the suite.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STATE ?= .state/dev

.PHONY: setup run stop test lint typecheck contracts pytest bench clean packages test-packaging test-container

setup:
	@bash scripts/setup.sh

run: setup
	@bash scripts/run-local.sh "$(STATE)"

stop:
	@bash scripts/run-local.sh --stop "$(STATE)"

lint: setup
	$(VENV)/bin/ruff check appliance tests bench $(wildcard tui)
	$(VENV)/bin/ruff format --check appliance tests bench $(wildcard tui)

typecheck: setup
	$(VENV)/bin/mypy appliance $(wildcard tui)

contracts: setup
	$(VENV)/bin/lint-imports

pytest: setup
	@bash scripts/run-tests.sh

# The suite (tests/packaging among it), then the packages booted in a container. S3IPFS_SKIP_PACKAGING=1 skips the
# packaging tests on purpose (and says so loudly).
test: lint typecheck contracts pytest test-container

# dist/s3ipfs_<version>_amd64.deb and dist/s3ipfs-<version>.x86_64.rpm (installs dpkg-dev/lintian/rpm if missing).
packages:
	@bash scripts/build-packages.sh

# The packaging tests (units, package contents, lintian, rpm, Ansible lint), then the container test.
test-packaging: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/packaging
	@bash tests/packaging/container-test.sh --build

# Builds the packages, installs the .deb into a booted Debian bookworm container (mmdebstrap + systemd-nspawn, needs
# root), runs the Ansible playbook into it twice, and installs the .rpm into a bookworm root.
test-container: setup
	@bash tests/packaging/container-test.sh --build

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf .state .cache .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
