#!/usr/bin/env bash
# Set up a virtualenv and run the demo workflow on the embedded default (no backend needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${OTEL_AGENTS_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[all]'
"$VENV/bin/python" examples/quickstart.py
