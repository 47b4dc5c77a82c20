#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install the course into it:
#   1. torch first, so that nothing pulls a multi-GB CUDA build onto a machine with no NVIDIA GPU;
#   2. the pinned requirements; 3. textclf_utils itself, editable.
# Variables: PYTHON (default python3), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=$(sed -n 's/^torch==//p' requirements.txt)
started=$(date +%s)

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"' || {
  echo "setup: $PYTHON is older than Python 3.11; set PYTHON=python3.11 (or newer)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check)

if "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  echo "setup: keeping the installed torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found: installing the CUDA build of torch $TORCH_VERSION"
  "${pip[@]}" "torch==$TORCH_VERSION"
elif "${pip[@]}" -q --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null; then
  echo "setup: installed torch $TORCH_VERSION from a wheel on this machine (pip's find-links)"
elif [ "$(uname -s)" = Linux ]; then
  echo "setup: no NVIDIA GPU: installing the CPU build of torch $TORCH_VERSION"
  "${pip[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
else
  "${pip[@]}" "torch==$TORCH_VERSION"  # macOS and Windows wheels on PyPI are CPU/MPS builds
fi

"${pip[@]}" -r requirements.txt
"${pip[@]}" --no-deps -e .
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
touch "$VENV/.textclf-installed"
echo "setup: done in $(( $(date +%s) - started )) s; environment size $(du -sh "$VENV" | cut -f1)"
