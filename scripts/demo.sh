#!/usr/bin/env bash
# Set up a virtualenv, run `otel-agents demo` (a multi-agent run, offline, recorded in the
# local store) and show its decision path.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${OTEL_AGENTS_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[all]'
"$VENV/bin/otel-agents" demo
echo
echo "\$ otel-agents show latest"
"$VENV/bin/otel-agents" show latest
