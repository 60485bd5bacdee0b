#!/usr/bin/env bash
# The test suite: install what is needed, lint with ruff, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh test
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest "$@"
