#!/usr/bin/env bash
# The main job: install what is needed, generate the synthetic database, run TSCNN LOSO, write a report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
exec .venv/bin/tscnn demo "$@"
