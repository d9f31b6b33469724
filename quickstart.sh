#!/usr/bin/env bash
# Set up a virtual environment and run rnaseq-saliency. Needs only Python 3.11+.
#
#   bash quickstart.sh demo   # the whole workflow on the bundled demo dataset, then the HTML report
#   bash quickstart.sh test   # linters and the test suite
#
# Environment: PYTHON (interpreter, default python3.11 or python3), VENV (default .venv),
# TORCH_SPEC (pip requirement for torch when the venv has none, default torch==2.13.0),
# CORES (snakemake --cores, default all).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${VENV:-.venv}
if [ -z "${PYTHON:-}" ]; then
  PYTHON=$(command -v python3.11 || command -v python3)
fi

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "quickstart: Python 3.11 or newer is needed (PYTHON=$PYTHON)" >&2; exit 1; }
    "$PYTHON" -m venv "$VENV"
  fi
  # torch first, so that the project's torch range is met by the build chosen here, not by
  # whatever build pip would pick on its own (on Linux that is a multi-GB CUDA build).
  if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
  fi
  local stamp="$VENV/.rnaseq-saliency-installed"
  local want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet -e ".[test]"
    echo "$want" > "$stamp"
  fi
}

case "${1:-}" in
  demo)
    setup
    "$VENV/bin/snakemake" --cores "${CORES:-all}"
    "$VENV/bin/snakemake" --report results/report.html
    echo "quickstart: done; open results/report.html"
    ;;
  test)
    setup
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/snakefmt" --check Snakefile workflow/rules
    "$VENV/bin/snakemake" --lint
    "$VENV/bin/pytest" "${@:2}"
    ;;
  *)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
