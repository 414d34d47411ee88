#!/usr/bin/env bash
# stripe-mock (Stripe's own API mock, a Go module) for the sandbox's Stripe conformance test.
#
#   hack/stripe-mock.sh build   build (or reuse) the binary in the cache, printing the build time
#   hack/stripe-mock.sh path    build if needed, then print the binary's path on stdout
#
# Built from the Go module proxy with `go install`, never downloaded prebuilt; cached outside git
# in $AURA_CACHE_DIR (default ~/.cache/aura)/stripe-mock/<version>/, so a version bump rebuilds
# and everything else reuses it.
set -euo pipefail

VERSION="${AURA_STRIPE_MOCK_VERSION:-v0.203.0}"
BIN_DIR="${AURA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aura}/stripe-mock/$VERSION"
BIN="$BIN_DIR/stripe-mock"

log() { echo "stripe-mock: $*" >&2; }
# shellcheck source=hack/lib/heartbeat.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/heartbeat.sh"

cmd_build() {
  if [[ -x "$BIN" ]]; then
    log "cached at $BIN"
    return 0
  fi
  command -v go >/dev/null || { log "Go >= 1.25 is required to build stripe-mock"; exit 1; }
  mkdir -p "$BIN_DIR"
  local started=$SECONDS
  log "building github.com/stripe/stripe-mock@$VERSION into $BIN_DIR (first time only)"
  # -trimpath as in hack/envtest.sh, so the standard library compiled for the control plane is
  # reused from Go's build cache; no debug info keeps the link short. The temporary GOBIN makes
  # the final rename atomic: a killed build leaves no half-written binary.
  BUILD_TMP="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
  trap 'rm -rf "$BUILD_TMP"' EXIT
  GOBIN="$BUILD_TMP" with_heartbeat stripe-mock "building" go install -trimpath -ldflags='-s -w' \
    "github.com/stripe/stripe-mock@$VERSION"
  mv "$BUILD_TMP/stripe-mock" "$BIN"
  log "built in $((SECONDS - started))s"
}

case "${1:-}" in
  build) cmd_build ;;
  path) cmd_build && echo "$BIN" ;;
  *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac
