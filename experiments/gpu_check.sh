#!/usr/bin/env bash
# The GPU check: run this first on any machine with a GPU (see experiments/gpu_check.py).
#   bash experiments/gpu_check.sh                 # every step on CUDA, under 8 minutes
#   bash experiments/gpu_check.sh --device cpu    # a dry run at small sizes
# It uses the project's .venv when there is one, else the python3 that has torch (a GPU machine's
# image), with this checkout on PYTHONPATH: nothing is installed or downloaded.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" experiments/gpu_check.py "$@"
