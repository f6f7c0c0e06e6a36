#!/usr/bin/env bash
# The README's install command on a fresh virtualenv with the pip that Python ships (no
# upgrade: Python 3.11 brings pip 23.2, whose resolver gave up on looser ranges), then a
# first run with no backend: it must say where the spans went.
#   bash scripts/check_fresh_install.sh [python3.11 ...]
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$work/src"  # the checkout as it is

pythons=("$@")
[ ${#pythons[@]} -gt 0 ] || pythons=(python3.11)
for python in "${pythons[@]}"; do
  if ! "$python" -c pass 2>/dev/null; then
    echo "== fresh install: $python not found, skipped"
    continue
  fi
  venv="$work/venv-$(basename "$python")"
  "$python" -m venv "$venv"
  echo "== fresh install with $python and its own $("$venv/bin/pip" --version | cut -d' ' -f1-2)"
  (cd "$work/src" && "$venv/bin/pip" install --quiet ".[openai,anthropic]")
  "$venv/bin/python" -c "import openai, anthropic, otel_agents; print('imports ok')"
  (cd "$work" && OTEL_AGENTS_STORE_PATH="$work/store-$(basename "$python")/traces.db" \
    "$venv/bin/python" -c "
import otel_agents
otel_agents.instrument()

@otel_agents.tool
def hello() -> str:
    return 'hi'

with otel_agents.agent('first'):
    hello()
" 2>"$work/first-run.err")
  grep -q "otel-agents: recording spans in the local store" "$work/first-run.err"
  OTEL_AGENTS_STORE_PATH="$work/store-$(basename "$python")/traces.db" "$venv/bin/otel-agents" runs
done
