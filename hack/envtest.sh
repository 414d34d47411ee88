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
GOBUILD_PREFIX=envtest
# shellcheck source=hack/lib/gobuild.sh
source "$ROOT/hack/lib/gobuild.sh"

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
  go_mod_tidy "$work" "etcd v$ETCD_VERSION"
  go_build_progress "etcd v$ETCD_VERSION" "$work" "$BIN_DIR/etcd.tmp" -- go.etcd.io/etcd/server/v3
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
  go_mod_tidy "$work" "Kubernetes v$K8S_VERSION"
  go_build_progress "kube-apiserver v$K8S_VERSION" "$work" "$BIN_DIR/kube-apiserver.tmp" \
    -- k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN_DIR/kube-apiserver.tmp" "$BIN_DIR/kube-apiserver"
}

cmd_build() {
  mkdir -p "$BIN_DIR"
  # A concurrent build into the same cache (another checkout, a test and a demo) waits here.
  exec 8>"$BIN_DIR/.build.lock"
  flock 8
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
  exec 8>&- # release the lock: the daemons `up` starts next must not inherit it
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A pid file holds "pid binary-path": `down` only signals a process that still runs that binary,
# so a recycled pid never takes an unrelated process with it.
alive() {
  local file="$1" pid exe
  [[ -f "$file" ]] || return 1
  read -r pid exe <"$file"
  [[ -n "$pid" && -e "/proc/$pid" ]] || return 1
  [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$exe")" ]]
}

apiserver_ready() {
  [[ -f "$RUN_DIR/apiserver-url" ]] || return 1
  curl -sf --max-time 2 --cacert "$RUN_DIR/pki/ca.crt" --cert "$RUN_DIR/pki/admin.crt" \
    --key "$RUN_DIR/pki/admin.key" "$(cat "$RUN_DIR/apiserver-url")/readyz" >/dev/null 2>&1
}

wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$what did not become ready within ${seconds}s; logs in $RUN_DIR/*.log"
      tail -n 20 "$RUN_DIR/$what.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

make_pki() {
  local pki="$RUN_DIR/pki"
  mkdir -p "$pki" && chmod 700 "$pki"
  [[ -f "$pki/admin.crt" ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=aura-envtest-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' \
    >"$pki/apiserver.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
  # system:masters bypasses RBAC: this identity is the cluster admin of a throw-away cluster.
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=aura-admin" \
    -keyout "$pki/admin.key" -out "$pki/admin.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$pki/admin.ext"
  openssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/admin.ext" -out "$pki/admin.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

write_kubeconfig() {
  local url="$1" pki="$RUN_DIR/pki"
  cat >"$KUBECONFIG_FILE.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: aura-envtest
  cluster:
    server: $url
    certificate-authority: $pki/ca.crt
users:
- name: aura-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: aura-envtest
  context: {cluster: aura-envtest, user: aura-admin, namespace: default}
current-context: aura-envtest
KC
  mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

cmd_up() {
  if alive "$RUN_DIR/etcd.pid" && alive "$RUN_DIR/kube-apiserver.pid" && apiserver_ready; then
    log "already running"
    cmd_env
    return 0
  fi
  cmd_down quiet
  cmd_build
  local started=$SECONDS
  mkdir -p "$RUN_DIR"
  make_pki
  local etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  local etcd_url="http://127.0.0.1:$etcd_port" api_url="https://127.0.0.1:$api_port"
  rm -rf "$RUN_DIR/etcd-data"
  setsid "$BIN_DIR/etcd" --name aura-envtest --data-dir "$RUN_DIR/etcd-data" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "aura-envtest=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --watch-progress-notify-interval=5s \
    --log-level=warn </dev/null >"$RUN_DIR/etcd.log" 2>&1 &
  echo "$! $BIN_DIR/etcd" >"$RUN_DIR/etcd.pid"
  wait_for etcd 30 curl -sf --max-time 1 "$etcd_url/health"

  local pki="$RUN_DIR/pki"
  setsid "$BIN_DIR/kube-apiserver" --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --secure-port="$api_port" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer="$api_url" --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
    --enable-priority-and-fairness=false \
    </dev/null >"$RUN_DIR/kube-apiserver.log" 2>&1 &
  echo "$! $BIN_DIR/kube-apiserver" >"$RUN_DIR/kube-apiserver.pid"
  echo "$api_url" >"$RUN_DIR/apiserver-url"
  wait_for kube-apiserver 60 apiserver_ready
  write_kubeconfig "$api_url"
  # The default namespace is created by the apiserver itself shortly after readiness.
  wait_for kube-apiserver 20 kubectl --kubeconfig "$KUBECONFIG_FILE" get namespace default -o name
  log "up in $((SECONDS - started))s at $api_url"
  cmd_env
}

cmd_down() {
  local component pid exe stopped=0
  for component in kube-apiserver etcd; do
    if alive "$RUN_DIR/$component.pid"; then
      read -r pid exe <"$RUN_DIR/$component.pid"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do [[ -e "/proc/$pid" ]] || break; sleep 0.1; done
      [[ -e "/proc/$pid" ]] && kill -9 "$pid" 2>/dev/null
      stopped=1
    fi
    rm -f "$RUN_DIR/$component.pid"
  done
  rm -rf "$RUN_DIR/etcd-data" "$RUN_DIR/apiserver-url" "$KUBECONFIG_FILE"
  if [[ "${1:-}" != quiet ]]; then
    if ((stopped)); then log "stopped"; else log "nothing was running"; fi
  fi
}

cmd_env() {
  [[ -f "$KUBECONFIG_FILE" ]] || { log "not running: run '$0 up' first"; return 1; }
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_status() {
  if alive "$RUN_DIR/kube-apiserver.pid" && apiserver_ready; then
    echo "running at $(cat "$RUN_DIR/apiserver-url")"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 build|up|down|env|status" >&2; exit 2 ;;
esac
