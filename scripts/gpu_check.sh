#!/usr/bin/env bash
# On a machine with a CUDA GPU: run notebooks 03-06 headless in the gpu profile (fresh kernel each, in order, so
# that 04-06 reuse notebook 03's model from the artifact cache). The notebooks record their headline figures in
# results/gpu.json (commit it); the minutes each took, to set against the T4 estimates their first cells print,
# go to build/gpu_check.log. Without a GPU it says so and exits: it waits, ready.
#   bash scripts/gpu_check.sh            (PY=python to use another interpreter than .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
command -v "$PY" >/dev/null || { echo "No $PY: run 'make setup' first, or set PY." >&2; exit 1; }
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "No CUDA GPU on this machine: scripts/gpu_check.sh runs only where one is." >&2
  exit 0
fi
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(0))"
if ! "$PY" -c "import sys; from textclf_utils.config import hub_is_reachable; sys.exit(0 if hub_is_reachable() else 1)"; then
  echo "The Hugging Face Hub is not reachable: the gpu profile falls back to the packaged MiniLM," \
       "so these are not bert-base-uncased figures." >&2
fi
mkdir -p build
"$PY" scripts/run_course.py --profile gpu 03 04 05 06 2>&1 | tee build/gpu_check.log
echo "Done: results/gpu.json holds the figures (commit it); build/gpu_check.log the minutes per notebook."
