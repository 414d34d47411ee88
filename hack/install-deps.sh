#!/usr/bin/env bash
# Install what a fresh machine lacks: Debian packages from hack/apt-packages.txt (needs root or
# sudo), the Python virtualenv, the cached etcd + kube-apiserver binaries, and stripe-mock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mapfile -t wanted < <(grep -v '^\s*#' hack/apt-packages.txt | grep -v '^\s*$' || true)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "install-deps: apt-get install ${missing[*]}" >&2
  $sudo apt-get update -qq
  # shellcheck source=hack/lib/heartbeat.sh
  source hack/lib/heartbeat.sh
  DEBIAN_FRONTEND=noninteractive with_heartbeat install-deps "installing Debian packages" \
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v kubectl >/dev/null || { echo "install-deps: kubectl is required (see README)" >&2; exit 1; }
command -v go >/dev/null || { echo "install-deps: Go >= 1.25 is required to build the control plane" >&2; exit 1; }
hack/bootstrap.sh
hack/envtest.sh build
hack/stripe-mock.sh build
hack/promtool.sh >/dev/null
