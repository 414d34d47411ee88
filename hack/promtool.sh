#!/usr/bin/env bash
# Build (once) and print the path of promtool, the Prometheus rules checker, from the Go module
# proxy into $AURA_CACHE_DIR (default ~/.cache/aura), keyed by version, like hack/envtest.sh.
#
#   hack/promtool.sh          build if needed, print the binary's path
#   hack/promtool.sh ARGS...  build if needed, run `promtool ARGS...`
set -euo pipefail

VERSION="${AURA_PROMTOOL_VERSION:-v0.316.0}"  # Prometheus 3.x publishes its Go module as v0.3xx
CACHE_DIR="${AURA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aura}"
BIN_DIR="$CACHE_DIR/promtool/$VERSION"
BIN="$BIN_DIR/promtool"

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || { echo "promtool: Go is required to build promtool (make deps)" >&2; exit 1; }
  mkdir -p "$BIN_DIR"
  echo "promtool: building github.com/prometheus/prometheus/cmd/promtool@$VERSION (first time only; a few minutes)" >&2
  started=$SECONDS
  # A heartbeat, so a cold build is never silent for minutes.
  ( while sleep 30; do echo "promtool: still building ($((SECONDS - started))s)" >&2; done ) &
  beat=$!
  trap 'kill $beat 2>/dev/null || true' EXIT
  # remove_all_sd leaves out the cloud service-discovery plugins (AWS, Azure, GCE, Kubernetes,
  # ...): promtool checks and unit-tests rules without them, and they are most of the build.
  GOBIN="$BIN_DIR" GOFLAGS=-trimpath go install -tags remove_all_sd "github.com/prometheus/prometheus/cmd/promtool@$VERSION"
  kill $beat 2>/dev/null || true
  echo "promtool: built in $((SECONDS - started))s" >&2
fi
if (($#)); then exec "$BIN" "$@"; fi
echo "$BIN"
