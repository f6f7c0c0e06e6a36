#!/usr/bin/env bash
# Set up a virtualenv and run every check: semconv drift, ruff, mypy, the test suite.
#   bash scripts/test.sh            # with python3
#   PYTHON=python3.13 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${OTEL_AGENTS_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'

echo "== semconv registry and generated code"
"$VENV/bin/python" scripts/semconv_gen.py --check
echo "== ruff"
"$VENV/bin/ruff" check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
# Any non-zero exit fails the run, including 5 ("no tests collected").
"$VENV/bin/python" -m pytest -q "$@"
