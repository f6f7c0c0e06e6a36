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

# The client adapters again, against the oldest `openai` and `anthropic` releases the
# extras accept (their lower bounds in pyproject.toml), in a virtualenv of their own.
echo "== client adapters on the oldest supported SDKs"
oldest=$(grep -oE '"(openai|anthropic)>=[0-9.]+"' pyproject.toml | tr -d '"' | sed 's/>=/==/')
OLDEST_VENV="$VENV-oldest-sdks"
if [ ! -x "$OLDEST_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$OLDEST_VENV"
fi
"$OLDEST_VENV/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086 # one requirement per word
"$OLDEST_VENV/bin/python" -m pip install --quiet -e '.[dev]' $oldest
"$OLDEST_VENV/bin/python" -m pip list 2>/dev/null | grep -E '^(openai|anthropic) '
"$OLDEST_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/instrumentation tests/cli/test_demo.py

# The README's install command, as a newcomer runs it (a fresh virtualenv, stock pip).
bash scripts/check_fresh_install.sh
