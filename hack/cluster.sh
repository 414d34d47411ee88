#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the deployment tests and by hand.
#
#   hack/cluster.sh build     build (or reuse) every binary and local image it needs
#   hack/cluster.sh helm      build Helm if needed, print its path (tailscaled: the same)
#   hack/cluster.sh up        build if needed, start the node, write .cluster/kubeconfig
#   hack/cluster.sh image     build the project image (unmodified Dockerfile, local base image)
#   hack/cluster.sh load IMG  copy a docker image into the node's containerd (no registry)
#   hack/cluster.sh down      stop everything `up` started, by PID and in order, and clean up
#   hack/cluster.sh status    say what runs
#   hack/cluster.sh env       print `export KUBECONFIG=...`
#
# What runs (all on this host, tracked by PID, logs in .cluster/*.log):
#   etcd, kube-apiserver (ServiceAccount and the other default admission plugins on, RBAC),
#   kube-controller-manager, kube-scheduler, containerd (its own instance) + kubelet + bridge CNI,
#   kube-proxy (iptables mode), CoreDNS as a Deployment. dockerd only builds images.
# No image is ever pulled: the pause and CoreDNS images are static binaries built here, the
# Debian base image comes from debootstrap, and images reach the node by `docker save | ctr
# import`. The Kubernetes binaries are built from the same module graph as hack/envtest.sh's
# kube-apiserver (shared Go build cache) and cached per version outside git, like envtest.
#
# Addresses: the node's address is 10.89.0.1 on a private bridge this script creates
# (aura-host0); the apiserver and anything a Pod must reach on the host (the sandbox in the
# tests) bind there, never to the host's external interface. Pods: 10.244.0.0/16 on aura-cni0.
# Services: 10.96.0.0/24 (kubernetes 10.96.0.1, kube-dns 10.96.0.10).
# One node per machine: kubelet ports and iptables rules are host-global. Needs root.
set -euo pipefail

K8S_VERSION="${AURA_K8S_VERSION:-1.35.4}"
ETCD_VERSION="${AURA_ETCD_VERSION:-3.6.16}"
COREDNS_VERSION="${AURA_COREDNS_VERSION:-1.14.7}"
HELM_VERSION="${AURA_HELM_VERSION:-3.19.0}"
TAILSCALE_VERSION="${AURA_TAILSCALE_VERSION:-1.102.5}"
BASE_VERSION=1 # bump to rebuild the debootstrap'd base images
GO_DIRECTIVE="1.25.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${AURA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aura}"
ENVTEST_BIN="$CACHE_DIR/envtest/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
NODE_BIN="$CACHE_DIR/cluster/k8s-$K8S_VERSION"
COREDNS_BIN="$CACHE_DIR/cluster/coredns-$COREDNS_VERSION"
HELM_BIN="$CACHE_DIR/helm/helm-$HELM_VERSION-2" # -N: bump when the build flags change
PAUSE_BIN="$CACHE_DIR/cluster/pause-1"
TAILSCALED_BIN="$CACHE_DIR/tailscale/tailscaled-$TAILSCALE_VERSION"
ROOTFS_TAR="$CACHE_DIR/cluster/debian-bookworm-minbase-$BASE_VERSION.tar"
RUN_DIR="${AURA_CLUSTER_DIR:-$ROOT/.cluster}"
KUBECONFIG_FILE="$RUN_DIR/kubeconfig"
MIRROR="${AURA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

NODE_NAME=aura-node
NODE_IP=10.89.0.1
HOST_LINK=aura-host0
CNI_LINK=aura-cni0
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/24
DNS_IP=10.96.0.10
API_PORT=6443
FW_CHAIN=AURA-FORWARD

# Local images (docker and the node's containerd both know them by these names).
PAUSE_IMAGE=registry.k8s.io/pause:3.10
COREDNS_IMAGE="aura.local/coredns:$COREDNS_VERSION"
DEBIAN_IMAGE="aura.local/debian:bookworm-$BASE_VERSION"
PYTHON_IMAGE="aura.local/python:3.11-slim-bookworm-$BASE_VERSION"
PROJECT_IMAGE="${AURA_IMAGE:-ghcr.io/aura-dev/aura:0.1.0}"
# tailscaled alone, for the tests' tailnet sidecar (tests/cluster/test_tailnet_sidecar.py).
TAILSCALED_IMAGE="aura.local/tailscaled:$TAILSCALE_VERSION"

STAGING_MODULES=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)
# kube-apiserver again (envtest.sh has one): this one carries a real version string, which
# `helm install` checks against a chart's kubeVersion. Same packages, so only a link step.
NODE_COMMANDS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
GOBUILD_PREFIX=cluster
# shellcheck source=hack/lib/gobuild.sh
source "$ROOT/hack/lib/gobuild.sh"

wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$what did not become ready within ${seconds}s; log: $RUN_DIR/$what.log"
      tail -n 20 "$RUN_DIR/$what.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.3
  done
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (containerd, kubelet, iptables)"; }

# --- build ---------------------------------------------------------------------------------

build_node_binaries() {
  local work="$CACHE_DIR/cluster/src/kubernetes-$K8S_VERSION" staging="0.${K8S_VERSION#1.}"
  mkdir -p "$work" "$NODE_BIN"
  # The same require + replace block as envtest.sh's kube-apiserver, so both builds resolve to
  # the same package versions and share the Go build cache.
  {
    printf 'module aura.dev/cluster/kubernetes\n\ngo %s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' \
      "$GO_DIRECTIVE" "$K8S_VERSION"
    for m in "${STAGING_MODULES[@]}"; do printf '\tk8s.io/%s => k8s.io/%s v%s\n' "$m" "$m" "$staging"; done
    printf ')\n'
  } >"$work/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${NODE_COMMANDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$work/tools.go"
  go_mod_tidy "$work" "Kubernetes v$K8S_VERSION"
  local v="v$K8S_VERSION" pkgs=() c
  for c in "${NODE_COMMANDS[@]}"; do [[ -x "$NODE_BIN/$c" ]] || pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  # Real version strings (kubectl version parses them); -X only changes the link step.
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*}"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  rm -rf "$NODE_BIN/tmp" && mkdir -p "$NODE_BIN/tmp"
  go_build_progress "${pkgs[*]##*/} v$K8S_VERSION" \
    "$work" "$NODE_BIN/tmp/" -ldflags "$ldflags" -- "${pkgs[@]}"
  mv "$NODE_BIN"/tmp/* "$NODE_BIN/" && rmdir "$NODE_BIN/tmp"
}

build_coredns() {
  local work="$CACHE_DIR/cluster/src/coredns-$COREDNS_VERSION"
  mkdir -p "$work" "$COREDNS_BIN"
  printf 'module aura.dev/cluster/coredns\n\ngo %s\n\nrequire github.com/coredns/coredns v%s\n' \
    "$GO_DIRECTIVE" "$COREDNS_VERSION" >"$work/go.mod"
  # Only the plugins a cluster's DNS needs: a smaller, faster build than CoreDNS's default set.
  cat >"$work/main.go" <<'SRC'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"errors", "log", "health", "ready", "kubernetes", "cache", "loadbalance", "forward"}
}

func main() { coremain.Run() }
SRC
  go_mod_tidy "$work" "CoreDNS v$COREDNS_VERSION"
  # Static, so the image can hold the binary alone; netgo keeps DNS resolution in Go.
  CGO_ENABLED=0 go_build_progress "coredns v$COREDNS_VERSION" "$work" "$COREDNS_BIN/coredns.tmp" \
    -tags netgo -ldflags "-s -w" -- .
  mv "$COREDNS_BIN/coredns.tmp" "$COREDNS_BIN/coredns"
}

build_pause() {
  local work="$CACHE_DIR/cluster/src/pause"
  mkdir -p "$work" "$PAUSE_BIN"
  printf 'module aura.dev/cluster/pause\n\ngo %s\n' "$GO_DIRECTIVE" >"$work/go.mod"
  # The Pod sandbox's PID 1: waits for a stop signal and reaps orphans (with
  # shareProcessNamespace it adopts e.g. ssh's ControlMaster processes).
  cat >"$work/main.go" <<'SRC'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
SRC
  CGO_ENABLED=0 go_build_progress pause "$work" "$PAUSE_BIN/pause.tmp" -ldflags "-s -w" -- .
  mv "$PAUSE_BIN/pause.tmp" "$PAUSE_BIN/pause"
}

build_helm() {
  local work="$CACHE_DIR/helm/src/helm-$HELM_VERSION"
  mkdir -p "$work" "$HELM_BIN"
  printf 'module aura.dev/cluster/helm\n\ngo %s\n\nrequire helm.sh/helm/v3 v%s\n' \
    "$GO_DIRECTIVE" "$HELM_VERSION" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >"$work/tools.go"
  go_mod_tidy "$work" "Helm v$HELM_VERSION"
  # As Helm's Makefile: the Kubernetes version Helm assumes without a cluster (`helm template`,
  # `helm lint`, a chart's kubeVersion check) follows the client-go it is built with.
  local k8s major minor flags
  k8s=$(cd "$work" && GOFLAGS=-mod=mod go list -f '{{.Version}}' -m k8s.io/client-go)
  major=$(($(cut -d. -f1 <<<"${k8s#v}") + 1)) minor=$(cut -d. -f2 <<<"$k8s")
  flags="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  go_build_progress "helm v$HELM_VERSION" "$work" "$HELM_BIN/helm.tmp" -ldflags "$flags" -- helm.sh/helm/v3/cmd/helm
  mv "$HELM_BIN/helm.tmp" "$HELM_BIN/helm"
}

# The real Tailscale daemon, for the deployment tests' sidecar: run there in userspace
# networking mode with its SOCKS5 and HTTP proxies, as the production sidecar image runs it.
build_tailscaled() {
  local work="$CACHE_DIR/tailscale/src/tailscale-$TAILSCALE_VERSION"
  mkdir -p "$work" "$TAILSCALED_BIN"
  printf 'module aura.dev/cluster/tailscale\n\ngo %s\n\nrequire tailscale.com v%s\n' \
    "$GO_DIRECTIVE" "$TAILSCALE_VERSION" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "tailscale.com/cmd/tailscaled"\n' >"$work/tools.go"
  go_mod_tidy "$work" "Tailscale v$TAILSCALE_VERSION"
  # Static, so its image holds the binary alone; the version stamp is what `--version` prints.
  local flags="-s -w -X tailscale.com/version.shortStamp=$TAILSCALE_VERSION"
  flags+=" -X tailscale.com/version.longStamp=$TAILSCALE_VERSION-aura"
  CGO_ENABLED=0 go_build_progress "tailscaled v$TAILSCALE_VERSION" "$work" \
    "$TAILSCALED_BIN/tailscaled.tmp" -ldflags "$flags" -- tailscale.com/cmd/tailscaled
  mv "$TAILSCALED_BIN/tailscaled.tmp" "$TAILSCALED_BIN/tailscaled"
}

# Each step is skipped when its output is cached; the whole build says what it does.
cmd_build() {
  local started=$SECONDS
  "$ROOT/hack/envtest.sh" build # etcd + kube-apiserver (shared with the envtest control plane)
  [[ -x "$PAUSE_BIN/pause" ]] || { log "building the pause binary"; build_pause; }
  cmd_build_node
  cmd_coredns
  cmd_tailscaled >/dev/null
  if ((SECONDS - started > 1)); then log "binaries built in $((SECONDS - started))s"; fi
  exec 8>&- # release the build lock: daemons started later must not inherit it
}

# Two builds into one cache directory at once (two checkouts, a test and a demo) would race on
# the same output files: the second waits for the first and then finds its binaries.
build_lock() {
  mkdir -p "$CACHE_DIR/cluster"
  exec 8>"$CACHE_DIR/cluster/.build-$1.lock"
  flock 8
}

cmd_build_node() {
  build_lock node
  local missing=0 c
  for c in "${NODE_COMMANDS[@]}"; do [[ -x "$NODE_BIN/$c" ]] || missing=1; done
  if ((missing)); then
    log "building ${NODE_COMMANDS[*]} v$K8S_VERSION into $NODE_BIN (first time only; several minutes)"
    build_node_binaries
  fi
}

cmd_coredns() {
  build_lock coredns
  if [[ ! -x "$COREDNS_BIN/coredns" ]]; then
    log "building CoreDNS v$COREDNS_VERSION into $COREDNS_BIN (first time only; a few minutes)"
    build_coredns
  fi
}

cmd_tailscaled() {
  build_lock tailscale
  if [[ ! -x "$TAILSCALED_BIN/tailscaled" ]]; then
    log "building tailscaled v$TAILSCALE_VERSION into $TAILSCALED_BIN (first time only; several minutes)"
    build_tailscaled
  fi
  echo "$TAILSCALED_BIN/tailscaled"
}

cmd_helm() {
  build_lock helm
  if [[ ! -x "$HELM_BIN/helm" ]]; then
    log "building Helm v$HELM_VERSION into $HELM_BIN (first time only; a few minutes)"
    build_helm
  fi
  echo "$HELM_BIN/helm"
}

# --- images (no registry) ------------------------------------------------------------------

docker_ready() { timeout 10 docker info >/dev/null 2>&1; }

# dockerd only builds images here. It gets no bridge and no iptables rules (builds use the
# host network), so it leaves nothing in the firewall; `down` stops it if `up`/`image` started it.
ensure_docker() {
  docker_ready && return 0
  command -v dockerd >/dev/null || die "dockerd is missing (apt-get install docker.io; hack/apt-packages.txt)"
  mkdir -p "$RUN_DIR"
  log "starting dockerd (image builds only: no bridge, no iptables)"
  8>&- setsid dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false --pidfile "$RUN_DIR/dockerd.dpid" \
    </dev/null >"$RUN_DIR/dockerd.log" 2>&1 &
  echo "$! $(command -v dockerd)" >"$RUN_DIR/dockerd.pid"
  wait_for dockerd 60 docker_ready
}

debootstrap_quietly() {
  debootstrap --variant=minbase bookworm "$1" "$MIRROR" >"$1.log" 2>&1 \
    || { tail -n 30 "$1.log" >&2; rm -rf "$1" "$1.log"; die "debootstrap failed"; }
}

build_rootfs_tar() {
  command -v debootstrap >/dev/null || die "debootstrap is missing (hack/apt-packages.txt)"
  local tmp="$CACHE_DIR/cluster/rootfs.tmp.$$" started=$SECONDS
  mkdir -p "$CACHE_DIR/cluster"
  rm -rf "$tmp"
  log "debootstrap: Debian bookworm minbase from $MIRROR (first time only; about a minute)"
  with_heartbeat cluster "running debootstrap (log: $tmp.log)" debootstrap_quietly "$tmp"
  rm -rf "$tmp.log" "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/* "$tmp"/var/log/*.log
  tar -C "$tmp" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
  rm -rf "$tmp"
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  log "debootstrap: done in $((SECONDS - started))s"
}

# A one-binary image from a static executable: `docker import` of a tar with just that file.
import_binary_image() {
  local image="$1" binary="$2" user="$3" tmp
  tmp=$(mktemp -d)
  cp "$binary" "$tmp/"
  tar -C "$tmp" --owner=0 --group=0 -cf - . | docker import \
    --change "ENTRYPOINT [\"/$(basename "$binary")\"]" --change "USER $user" - "$image" >/dev/null
  rm -rf "$tmp"
}

# The stand-in for python:3.11-slim-bookworm: Debian's Python on the debootstrap'd base. It
# trusts the host's extra CA certificates, so pip inside `docker build` works behind a
# TLS-intercepting proxy (Debian's pip 23 reads only PIP_CERT, not the system store).
build_python_image() {
  local ctx
  ctx=$(mktemp -d)
  mkdir -p "$ctx/ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $DEBIAN_IMAGE
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && apt-get install --yes --no-install-recommends python3 python3-venv python-is-python3 ca-certificates \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    LANG=C.UTF-8
CMD ["python3"]
DOCKERFILE
  docker build --network host -q -t "$PYTHON_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

cmd_images() {
  ensure_docker
  local started=$SECONDS
  [[ -x "$PAUSE_BIN/pause" ]] || { log "building the pause binary"; build_pause; }
  have_image "$PAUSE_IMAGE" || { log "making $PAUSE_IMAGE"; import_binary_image "$PAUSE_IMAGE" "$PAUSE_BIN/pause" 65535:65535; }
  if [[ -x "$COREDNS_BIN/coredns" ]] && ! have_image "$COREDNS_IMAGE"; then
    log "making $COREDNS_IMAGE"
    import_binary_image "$COREDNS_IMAGE" "$COREDNS_BIN/coredns" 65532:65532
  fi
  if [[ -x "$TAILSCALED_BIN/tailscaled" ]] && ! have_image "$TAILSCALED_IMAGE"; then
    log "making $TAILSCALED_IMAGE"
    import_binary_image "$TAILSCALED_IMAGE" "$TAILSCALED_BIN/tailscaled" 65532:65532
  fi
  if ! have_image "$DEBIAN_IMAGE"; then
    [[ -f "$ROOTFS_TAR" ]] || build_rootfs_tar
    log "making $DEBIAN_IMAGE"
    docker import --change 'CMD ["/bin/bash"]' "$ROOTFS_TAR" "$DEBIAN_IMAGE" >/dev/null
  fi
  if ! have_image "$PYTHON_IMAGE"; then
    log "making $PYTHON_IMAGE (Debian's python3 + the host's CA certificates; about 30 s)"
    with_heartbeat cluster "making $PYTHON_IMAGE" build_python_image
  fi
  if ((SECONDS - started > 1)); then log "local base images made in $((SECONDS - started))s"; fi
}

# The project image from the unmodified Dockerfile. The legacy builder is used on purpose:
# BuildKit would try to fetch the `# syntax=` frontend from a registry.
cmd_image() {
  local tag="${1:-$PROJECT_IMAGE}"
  cmd_images
  local started=$SECONDS
  log "docker build $ROOT (PYTHON_IMAGE=$PYTHON_IMAGE) -> $tag"
  DOCKER_BUILDKIT=0 docker build --network host --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -t "$tag" "$ROOT" >&2
  log "image $tag built in $((SECONDS - started))s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

# --- the node ------------------------------------------------------------------------------

CTR() { ctr --address "$RUN_DIR/containerd/containerd.sock" --namespace k8s.io "$@"; }
KUBECTL() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# A pid file holds "pid binary-path": only a process still running that binary is signalled, so
# a recycled pid never takes an unrelated process with it.
alive() {
  local file="$1" pid exe
  [[ -f "$file" ]] || return 1
  read -r pid exe <"$file"
  [[ -n "$pid" && -e "/proc/$pid" ]] || return 1
  [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$exe")" ]]
}

# start NAME BINARY ARGS...: a daemon in its own session, logging to .cluster/NAME.log.
start() {
  local name="$1" binary="$2"
  shift 2
  setsid "$binary" "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 8>&- &
  echo "$! $binary" >"$RUN_DIR/$name.pid"
}

stop() {
  local name="$1" pid exe
  if alive "$RUN_DIR/$name.pid"; then
    read -r pid exe <"$RUN_DIR/$name.pid"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do [[ -e "/proc/$pid" ]] || break; sleep 0.1; done
    [[ -e "/proc/$pid" ]] && kill -9 "$pid" 2>/dev/null
    log "stopped $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

apiserver_ready() {
  curl -sf --max-time 2 --cacert "$RUN_DIR/pki/ca.crt" --cert "$RUN_DIR/pki/admin.crt" \
    --key "$RUN_DIR/pki/admin.key" "https://$NODE_IP:$API_PORT/readyz" >/dev/null 2>&1
}

make_pki() {
  local pki="$RUN_DIR/pki"
  mkdir -p "$pki" && chmod 700 "$pki"
  [[ -f "$pki/admin.crt" ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=aura-cluster-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
    "$NODE_IP" >"$pki/apiserver.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
  # One system:masters identity for kubectl and every component: a throw-away cluster.
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=aura-admin" \
    -keyout "$pki/admin.key" -out "$pki/admin.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$pki/admin.ext"
  openssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/admin.ext" -out "$pki/admin.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

write_kubeconfig() {
  local pki="$RUN_DIR/pki"
  cat >"$KUBECONFIG_FILE.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: aura-cluster
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $pki/ca.crt
users:
- name: aura-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: aura-cluster
  context: {cluster: aura-cluster, user: aura-admin, namespace: default}
current-context: aura-cluster
KC
  mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

# The firewall as iptables-save prints it, minus what an untouched table shows anyway (comments,
# counters, table headers, built-in chains with the ACCEPT policy): rules, chains, policies.
iptables_state() {
  "${1:-iptables}-save" | sed 's/ *\[[0-9]*:[0-9]*\]//' \
    | { grep -v -e '^#' -e '^\*' -e '^COMMIT' -e '^:[A-Z]* ACCEPT$' || true; }
}

# Chains the kubelet, kube-proxy and the CNI plugins add (KUBE-*, CNI-*) and that did not exist
# before `up`: first every rule that jumps to them, then the chains themselves.
remove_chains() {
  local ipt="$1" table chain rule
  for table in filter nat mangle; do
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      grep -q -- "^:$chain " "$RUN_DIR/$ipt.before" 2>/dev/null && continue
      while read -r rule; do
        [[ -n "$rule" ]] && { eval "$ipt -t $table $rule" 2>/dev/null || true; }
      done < <("$ipt" -t "$table" -S | { grep -e "-j $chain\$" -e "-j $chain " || true; } | sed 's/^-A/-D/')
      "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      grep -q -- "^:$chain " "$RUN_DIR/$ipt.before" 2>/dev/null && continue
      "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

# Host networking the node needs, recorded so `down` can undo exactly this: the node's private
# address, forwarding for the Pod network, and one firewall chain of ours.
setup_host_network() {
  [[ -f "$RUN_DIR/ip_forward.before" ]] || cat /proc/sys/net/ipv4/ip_forward >"$RUN_DIR/ip_forward.before"
  [[ -f "$RUN_DIR/netns.before" ]] || ip netns list 2>/dev/null | awk '{print $1}' >"$RUN_DIR/netns.before"
  [[ -f "$RUN_DIR/iptables.before" ]] || iptables_state iptables >"$RUN_DIR/iptables.before"
  [[ -f "$RUN_DIR/ip6tables.before" ]] || iptables_state ip6tables >"$RUN_DIR/ip6tables.before"
  if ! ip link show "$HOST_LINK" >/dev/null 2>&1; then
    ip link add "$HOST_LINK" type bridge
    ip addr add "$NODE_IP/32" dev "$HOST_LINK"
    ip link set "$HOST_LINK" up
  fi
  echo 1 >/proc/sys/net/ipv4/ip_forward
  iptables -N "$FW_CHAIN" 2>/dev/null || iptables -F "$FW_CHAIN"
  iptables -A "$FW_CHAIN" -s "$POD_CIDR" -j ACCEPT
  iptables -A "$FW_CHAIN" -d "$POD_CIDR" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  iptables -C FORWARD -j "$FW_CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$FW_CHAIN"
}

write_containerd_config() {
  local d="$RUN_DIR/containerd"
  mkdir -p "$d" "$RUN_DIR/cni/net.d"
  cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine has no CAP_SYS_RESOURCE: the CRI's oom_score_adj of -998 for sandboxes would
  # fail every Pod. Clamp scores to containerd's own instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN_DIR/cni/net.d"
TOML
  local mtu
  mtu=$(cat "/sys/class/net/$(ip route show default | awk '{print $5; exit}')/mtu" 2>/dev/null || echo 1500)
  cat >"$RUN_DIR/cni/net.d/10-aura.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "aura",
  "plugins": [
    {"type": "bridge", "bridge": "$CNI_LINK", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "mtu": $mtu,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$RUN_DIR/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
}

write_kubelet_config() {
  mkdir -p "$RUN_DIR/kubelet"
  cat >"$RUN_DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$RUN_DIR/containerd/containerd.sock
failSwapOn: false
podLogsDir: $RUN_DIR/pod-logs
address: $NODE_IP
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: $RUN_DIR/pki/ca.crt}}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
clusterDomain: cluster.local
clusterDNS: ["$DNS_IP"]
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: false
YAML
}

coredns_manifest() {
  cat <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
           pods insecure
           fallthrough in-addr.arpa ip6.arpa
        }
        forward . /etc/resolv.conf
        cache 30
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
        # Port 53 as a non-root user: capabilities added to a non-root container are not
        # effective (no ambient set), so lower the unprivileged port range in its netns.
        sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "53"}]
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /health, port: 8080}}
        volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
YAML
}

import_image() { docker save "$1" | CTR images import - >/dev/null; }

# Images reach the node by `docker save | ctr import`; a marker with docker's image id skips an
# import whose image is already there (containerd's store survives `down`).
cmd_load() {
  local image="$1" id marker
  id=$(docker image inspect -f '{{.Id}}' "$image") || die "no docker image $image"
  marker="$RUN_DIR/containerd/loaded/$(tr '/:' '__' <<<"$image")"
  if [[ -f "$marker" && "$(cat "$marker")" == "$id" ]] && CTR images ls -q | grep -qx "$image"; then
    return 0
  fi
  local started=$SECONDS
  log "importing $image into the node's containerd"
  with_heartbeat cluster "importing $image" import_image "$image"
  mkdir -p "$(dirname "$marker")" && echo "$id" >"$marker"
  log "imported $image in $((SECONDS - started))s"
}

node_ready() {
  [[ "$(KUBECTL get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]] \
    && [[ -z "$(KUBECTL get node "$NODE_NAME" -o jsonpath='{.spec.taints}' 2>/dev/null)" ]]
}

step() { log "$(printf '%-44s %5ss (total %4ss)' "$1" $((SECONDS - STEP_AT)) $((SECONDS - UP_AT)))"; STEP_AT=$SECONDS; }

cmd_up() {
  need_root
  if cmd_status >/dev/null 2>&1; then log "already running"; cmd_env; return 0; fi
  cmd_down quiet keep-docker
  UP_AT=$SECONDS STEP_AT=$SECONDS
  cmd_build
  mkdir -p "$RUN_DIR"
  cmd_images
  step "binaries and local images ready"
  for bin in containerd runc iptables ctr; do command -v "$bin" >/dev/null || die "$bin is missing (hack/apt-packages.txt)"; done
  [[ -x /usr/lib/cni/bridge ]] || die "CNI plugins are missing (apt-get install containernetworking-plugins)"
  make_pki
  write_kubeconfig
  setup_host_network
  write_containerd_config
  write_kubelet_config

  start containerd "$(command -v containerd)" --config "$RUN_DIR/containerd/config.toml"
  wait_for containerd 30 CTR version
  cmd_load "$PAUSE_IMAGE"
  cmd_load "$COREDNS_IMAGE"
  step "containerd + pause/CoreDNS images"

  local etcd_port peer_port etcd_url
  etcd_port=$(free_port); peer_port=$(free_port); etcd_url="http://127.0.0.1:$etcd_port"
  rm -rf "$RUN_DIR/etcd-data"
  start etcd "$ENVTEST_BIN/etcd" --name aura-cluster --data-dir "$RUN_DIR/etcd-data" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "aura-cluster=http://127.0.0.1:$peer_port" --unsafe-no-fsync=true --log-level=warn
  wait_for etcd 30 curl -sf --max-time 1 "$etcd_url/health"
  local pki="$RUN_DIR/pki"
  # The default admission plugins stay on (ServiceAccount, NamespaceLifecycle, LimitRanger,
  # DefaultStorageClass, ResourceQuota, ...): Pods are admitted as on a real cluster.
  start kube-apiserver "$NODE_BIN/kube-apiserver" --etcd-servers="$etcd_url" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --kubelet-client-certificate="$pki/admin.crt" \
    --kubelet-client-key="$pki/admin.key" --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true --authorization-mode=Node,RBAC
  wait_for kube-apiserver 90 apiserver_ready
  step "etcd + kube-apiserver ready"

  start kube-controller-manager "$NODE_BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=false --leader-elect=false --secure-port=0 \
    --cluster-cidr="$POD_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" --concurrent-gc-syncs=5
  start kube-scheduler "$NODE_BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" --leader-elect=false --secure-port=0
  start kube-proxy "$NODE_BIN/kube-proxy" --kubeconfig="$KUBECONFIG_FILE" --proxy-mode=iptables \
    --cluster-cidr="$POD_CIDR" --hostname-override="$NODE_NAME" --conntrack-max-per-core=0 \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256
  start kubelet "$NODE_BIN/kubelet" --config="$RUN_DIR/kubelet/config.yaml" --kubeconfig="$KUBECONFIG_FILE" \
    --root-dir="$RUN_DIR/kubelet/root" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
  wait_for kubelet 90 node_ready
  # Without kube-proxy's rules, Pod traffic to the kubernetes Service (10.96.0.1) would leave
  # the host through the default route instead of reaching the apiserver.
  wait_for kube-proxy 60 curl -sf --max-time 1 http://127.0.0.1:10256/healthz
  wait_for kube-controller-manager 60 KUBECTL -n default get serviceaccount default
  step "kcm, scheduler, kube-proxy, kubelet: Node Ready"

  coredns_manifest | KUBECTL apply -f - >/dev/null
  KUBECTL -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
  step "CoreDNS rolled out"
  log "up in $((SECONDS - UP_AT))s; kubeconfig: $KUBECONFIG_FILE"
  cmd_env
}

# Stop in the order that lets each layer clean up after itself: Pods are deleted through the
# API while the kubelet runs (so it unmounts volumes and the CNI tears down each netns), then
# the controllers, the node, the runtime, the control plane; whatever is left is removed and
# anything still different from before `up` is reported.
cmd_down() {
  local quiet="${1:-}"
  need_root
  stop kube-controller-manager
  stop kube-scheduler
  if alive "$RUN_DIR/kubelet.pid" && alive "$RUN_DIR/kube-apiserver.pid" && apiserver_ready; then
    KUBECTL delete pods --all --all-namespaces --grace-period=2 --wait=true --timeout=90s >/dev/null 2>&1 || true
  fi
  stop kubelet
  if alive "$RUN_DIR/containerd.pid"; then
    local sandbox
    for sandbox in $(CTR tasks ls -q 2>/dev/null); do CTR tasks kill -s SIGKILL "$sandbox" >/dev/null 2>&1 || true; done
    sleep 1
    for sandbox in $(CTR tasks ls -q 2>/dev/null); do CTR tasks delete -f "$sandbox" >/dev/null 2>&1 || true; done
  fi
  stop kube-proxy
  if [[ -x "$NODE_BIN/kube-proxy" ]] && [[ -f "$RUN_DIR/iptables.before" ]]; then
    "$NODE_BIN/kube-proxy" --cleanup --proxy-mode=iptables >/dev/null 2>&1 || true
  fi
  stop containerd
  # Shims of our containerd outlive it when a task could not be stopped: found by the socket
  # path in their command line, stopped by pid.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $RUN_DIR/containerd/containerd.sock" || true); do
    kill -9 "$pid" 2>/dev/null || true
  done
  stop kube-apiserver
  stop etcd
  [[ "${2:-}" == keep-docker ]] || stop dockerd
  cleanup_host
  rm -rf "$RUN_DIR/etcd-data" "$KUBECONFIG_FILE" "$RUN_DIR/containerd/state" "$RUN_DIR/kubelet/root" \
    "$RUN_DIR/cni/ipam" "$RUN_DIR/pod-logs"
  [[ "$quiet" == quiet ]] || log "down"
}

cleanup_host() {
  local m ns
  # Mounts under our directories (volume tmpfs, the kubelet's bind mounts, containerd's
  # rootfs overlays), deepest first.
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v d="$RUN_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
  while read -r ns; do
    [[ -n "$ns" ]] || continue
    grep -qx "$ns" "$RUN_DIR/netns.before" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
  done < <(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}')
  ip link del "$CNI_LINK" 2>/dev/null || true
  ip link del "$HOST_LINK" 2>/dev/null || true
  if [[ -f "$RUN_DIR/iptables.before" ]]; then
    iptables -D FORWARD -j "$FW_CHAIN" 2>/dev/null || true
    iptables -F "$FW_CHAIN" 2>/dev/null || true
    iptables -X "$FW_CHAIN" 2>/dev/null || true
    local ipt after
    for ipt in iptables ip6tables; do
      remove_chains "$ipt"
      after=$(iptables_state "$ipt")
      if [[ "$after" != "$(cat "$RUN_DIR/$ipt.before" 2>/dev/null)" ]]; then
        log "warning: $ipt differs from before 'up':"
        diff <(cat "$RUN_DIR/$ipt.before" 2>/dev/null) <(echo "$after") >&2 || true
      fi
    done
    rm -f "$RUN_DIR/iptables.before" "$RUN_DIR/ip6tables.before" "$RUN_DIR/netns.before"
  fi
  if [[ -f "$RUN_DIR/ip_forward.before" ]]; then
    cat "$RUN_DIR/ip_forward.before" >/proc/sys/net/ipv4/ip_forward
    rm -f "$RUN_DIR/ip_forward.before"
  fi
}

cmd_env() {
  [[ -f "$KUBECONFIG_FILE" ]] || { log "not running: run '$0 up' first"; return 1; }
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_status() {
  local c running=0 total=0
  for c in etcd kube-apiserver containerd kube-controller-manager kube-scheduler kube-proxy kubelet; do
    total=$((total + 1))
    if alive "$RUN_DIR/$c.pid"; then running=$((running + 1)); echo "$c: running (pid $(cut -d' ' -f1 "$RUN_DIR/$c.pid"))"
    else echo "$c: not running"; fi
  done
  ((running == total)) && node_ready || return 1
  echo "node $NODE_NAME Ready at https://$NODE_IP:$API_PORT"
}

case "${1:-}" in
  build) cmd_build ;;
  build-node) cmd_build_node ;;
  helm) cmd_helm ;;
  tailscaled) cmd_tailscaled ;;
  coredns) cmd_coredns ;;
  images) cmd_images ;;
  image) shift; cmd_image "$@" ;;
  load) shift; cmd_load "${1:?usage: $0 load IMAGE}" ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 build|helm|tailscaled|up|down|status|env|image|load IMAGE" >&2; exit 2 ;;
esac
