#!/usr/bin/env bash
# Build or install the backend programs the end-to-end tests run, into a cache outside
# the repository (first run on a fresh machine: about 30 minutes under load; later runs:
# seconds, nothing is rebuilt unless its recipe changed).
#   bash scripts/backend/build.sh            # all: collector, jaeger, prometheus
#   bash scripts/backend/build.sh collector  # one of them
# Prints nothing on stdout but the lines "NAME=PATH" of what it built, so that callers
# can eval it. The cache is $OTEL_AGENTS_BACKEND_CACHE (default ~/.cache/otel-agents-backend).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${OTEL_AGENTS_BACKEND_CACHE:-$HOME/.cache/otel-agents-backend}"
mkdir -p "$cache/bin"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
export GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go-build"
export PATH="/usr/local/go/bin:$GOPATH/bin:$PATH"

collector_release=v0.161.0
jaeger_module_version=v1.75.0   # its cmd/jaeger is Jaeger v2; v1.76.0 is not a release to use

log() { echo "[backend] $*" >&2; }

# A recipe's fingerprint: rebuild only when it changes.
stamp_ok() { [ -x "$1" ] && [ -f "$1.recipe" ] && [ "$(cat "$1.recipe")" = "$2" ]; }

build_collector() {
  local out="$cache/bin/otelcol-otel-agents"
  local recipe
  recipe="$(sha256sum "$repo/collector-config/builder.yaml" | cut -d' ' -f1) $(go version)"
  if ! stamp_ok "$out" "$recipe"; then
    log "building the collector from collector-config/builder.yaml (about 15 minutes the first time)"
    [ -x "$GOPATH/bin/builder" ] || go install "go.opentelemetry.io/collector/cmd/builder@$collector_release" >&2
    local work="$cache/collector-build"
    rm -rf "$work" && mkdir -p "$work"
    (cd "$work" && "$GOPATH/bin/builder" --config "$repo/collector-config/builder.yaml" --ldflags='-s -w') >&2
    # Replace, never overwrite in place: a running collector keeps its own copy.
    cp "$work/otelcol-otel-agents/otelcol-otel-agents" "$out.new" && mv -f "$out.new" "$out"
    echo "$recipe" > "$out.recipe"
  fi
  echo "OTELCOL=$out"
}

build_jaeger() {
  local out="$cache/bin/jaeger"
  local recipe="jaeger $jaeger_module_version $(go version)"
  if ! stamp_ok "$out" "$recipe"; then
    log "building Jaeger v2 from github.com/jaegertracing/jaeger@$jaeger_module_version (about 15 minutes the first time)"
    local work="$cache/jaeger-build"
    rm -rf "$work" && mkdir -p "$work"
    (
      cd "$work"
      go mod init local/jaegerbuild
      # jaeger's go.mod replaces sarama; a wrapper module must say so itself.
      go mod edit -replace github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
      go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$jaeger_module_version"
      go build -ldflags='-s -w' -o jaeger github.com/jaegertracing/jaeger/cmd/jaeger
    ) >&2
    cp "$work/jaeger" "$out.new" && mv -f "$out.new" "$out"
    echo "$recipe" > "$out.recipe"
  fi
  echo "JAEGER=$out"
}

install_prometheus() {
  # Debian's Prometheus 2.42 (promtool) and Alertmanager 0.25 (amtool); services not started.
  if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null \
     || ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
    log "installing prometheus and prometheus-alertmanager from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >&2
    # Debian's packages start services where systemd runs; the tests start their own.
    for service in prometheus prometheus-alertmanager; do
      service "$service" stop >/dev/null 2>&1 || true
    done
  fi
  echo "PROMETHEUS=$(command -v prometheus)"
  echo "PROMTOOL=$(command -v promtool)"
  echo "ALERTMANAGER=$(command -v prometheus-alertmanager)"
  echo "AMTOOL=$(command -v amtool)"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(collector jaeger prometheus)
for target in "${targets[@]}"; do
  case "$target" in
    collector) build_collector ;;
    jaeger) build_jaeger ;;
    prometheus) install_prometheus ;;
    *) log "unknown target: $target (collector, jaeger, prometheus)"; exit 2 ;;
  esac
done
