#!/usr/bin/env bash
# Set up a virtualenv and run every check: semconv drift, ruff, mypy, the test suite
# (including the backend end to end, on programs built by scripts/backend/build.sh).
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
# LangChain's OpenAI chat model, for the test that one call through it gives one chat span
# (our openai adapter's). Not in `dev`: no release of it accepts the oldest langchain-core
# that the oldest-SDK run below pins.
"$VENV/bin/python" -m pip install --quiet "langchain-openai>=1.1"

echo "== semconv registry and generated code"
"$VENV/bin/python" scripts/semconv_gen.py --check
echo "== ruff"
"$VENV/bin/ruff" check .
echo "== mypy"
"$VENV/bin/mypy"
# dashboards/ is built with grafana-foundation-sdk, which needs Python 3.11 (typing.Self).
if "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "== dashboards: mypy on Python 3.11, generated JSON up to date"
  "$VENV/bin/mypy" --python-version 3.11 -p dashboards
  "$VENV/bin/python" -m dashboards.generate --check
fi
echo "== backend programs (collector, Jaeger, Prometheus, Alertmanager; cached after the first build)"
# The end-to-end tests in tests/backend run them; scripts/backend/build.sh builds them once
# into ~/.cache/otel-agents-backend (about 15 minutes on a fresh machine, seconds after).
if [ "${OTEL_AGENTS_SKIP_BACKEND:-0}" != "1" ]; then
  bash scripts/backend/build.sh
fi
echo "== pytest"
# Any non-zero exit fails the run, including 5 ("no tests collected").
"$VENV/bin/python" -m pytest -q "$@"

# The client adapters again, against the oldest client releases (openai, anthropic,
# google-genai, boto3) the extras accept (their lower bounds in pyproject.toml), in a
# virtualenv of their own.
echo "== client adapters on the oldest supported SDKs"
oldest=$(grep -oE '"(openai|anthropic|google-genai|boto3|openai-agents|mcp|langgraph|langgraph-prebuilt|langchain-core)>=[0-9.]+' pyproject.toml | tr -d '"' | sed 's/>=/==/')
OLDEST_VENV="$VENV-oldest-sdks"
if [ ! -x "$OLDEST_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$OLDEST_VENV"
fi
"$OLDEST_VENV/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086 # one requirement per word
"$OLDEST_VENV/bin/python" -m pip install --quiet -e '.[dev]' $oldest
"$OLDEST_VENV/bin/python" -m pip list 2>/dev/null | grep -E '^(openai|anthropic|google-genai|boto3|openai-agents|mcp|langgraph|langgraph-prebuilt|langchain-core) '
"$OLDEST_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/adapters tests/integrations tests/cli/test_demo.py

# The README's install command, as a newcomer runs it (a fresh virtualenv, stock pip).
bash scripts/check_fresh_install.sh
