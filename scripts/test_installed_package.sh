#!/usr/bin/env bash
# Run lessons as Colab and Kaggle do: textclf_utils built as a wheel and installed (no dependencies: the
# environment has them) into a folder outside the repository, the lessons copied to another such folder and
# executed there under nbval in the smoke profile, offline. Fails if the kernel imports the checkout's package.
#   PY=.venv/bin/python bash scripts/test_installed_package.sh notebooks/00_environment_check.ipynb ...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ "$#" -gt 0 ] || { echo "usage: $0 NOTEBOOK..." >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/textclf-installed.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PY" -m pip wheel -q --no-deps --disable-pip-version-check -w "$work/dist" .
"$PY" -m pip install -q --no-deps --disable-pip-version-check --target "$work/site" "$work"/dist/textclf_utils-*.whl
mkdir "$work/notebooks"
cp "$@" "$work/notebooks/"
cd "$work"
export PYTHONPATH="$work/site" TEXTCLF_ARTIFACTS_DIR="$work/artifacts" HF_HUB_OFFLINE=1 TEXTCLF_PROFILE=smoke
"$PY" -c 'import sys, textclf_utils as t; from textclf_utils import recipes
assert t.__file__.startswith(sys.argv[1]), f"imported {t.__file__}, not the installed wheel"
[recipes.stored_recipe_runs(name) for name in recipes.STORED_RUNS]
print(f"textclf_utils from the wheel, installed in {sys.argv[1]}")' "$work/site"
"$PY" -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=900 notebooks
