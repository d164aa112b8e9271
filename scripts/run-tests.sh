#!/usr/bin/env bash
# Run the suite with coverage. pytest's exit 5 ("no tests collected") is a failure here, never a pass.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/python -m pytest -q -p no:cacheprovider --cov=appliance --cov-report=term "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "run-tests: pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"
