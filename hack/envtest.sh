#!/usr/bin/env bash
# Local control plane for tests and the demo: etcd + kube-apiserver built from the Go module proxy.
#
#   hack/envtest.sh build   build (or reuse) the binaries in the cache
#   hack/envtest.sh up      build if needed, start etcd + apiserver on loopback, write .envtest/kubeconfig
#   hack/envtest.sh down    stop exactly the processes `up` started
#   hack/envtest.sh env     print `export KUBECONFIG=...` for a running control plane
#   hack/envtest.sh status  say whether it is running
#
# The binaries live outside git in $AURA_CACHE_DIR (default ~/.cache/aura), keyed by version, so a
# version bump rebuilds and everything else reuses. Run state lives in .envtest/ (git-ignored).
set -euo pipefail

K8S_VERSION="${AURA_K8S_VERSION:-1.35.4}"
ETCD_VERSION="${AURA_ETCD_VERSION:-3.6.16}"
GO_DIRECTIVE="1.25.0"
STAGING_MODULES=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${AURA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aura}"
BIN_DIR="$CACHE_DIR/envtest/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
RUN_DIR="${AURA_ENVTEST_DIR:-$ROOT/.envtest}"
KUBECONFIG_FILE="$RUN_DIR/kubeconfig"

log() { printf 'envtest: %s\n' "$*" >&2; }

build_etcd() {
  local work="$CACHE_DIR/envtest/src/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  cat >"$work/go.mod" <<MOD
module aura.dev/envtest/etcd

go 1.25.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
MOD
  cat >"$work/tools.go" <<'SRC'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
SRC
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
   cd "$work" && GOFLAGS=-mod=mod go build -trimpath -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

build_apiserver() {
  local work="$CACHE_DIR/envtest/src/kubernetes-$K8S_VERSION"
  local staging="0.${K8S_VERSION#1.}"
  mkdir -p "$work"
  {
    printf 'module aura.dev/envtest/kubernetes\n\ngo %s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' \
      "$GO_DIRECTIVE" "$K8S_VERSION"
    for m in "${STAGING_MODULES[@]}"; do printf '\tk8s.io/%s => k8s.io/%s v%s\n' "$m" "$m" "$staging"; done
    printf ')\n'
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'SRC'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
SRC
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
   cd "$work" && GOFLAGS=-mod=mod go build -trimpath -o "$BIN_DIR/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$BIN_DIR/kube-apiserver.tmp" "$BIN_DIR/kube-apiserver"
}

cmd_build() {
  mkdir -p "$BIN_DIR"
  local started=$SECONDS
  if [[ ! -x "$BIN_DIR/etcd" ]]; then
    log "building etcd v$ETCD_VERSION into $BIN_DIR (first time only)"
    build_etcd
  fi
  if [[ ! -x "$BIN_DIR/kube-apiserver" ]]; then
    log "building kube-apiserver v$K8S_VERSION into $BIN_DIR (first time only; several minutes)"
    build_apiserver
  fi
  if ((SECONDS - started > 1)); then log "built in $((SECONDS - started))s"; fi
}

case "${1:-}" in
  build) cmd_build ;;
  *) echo "usage: $0 build|up|down|env|status" >&2; exit 2 ;;
esac
