#!/usr/bin/env bash
# The main job. Until `aura demo` walks the full billing lifecycle, this brings up the local
# control plane, installs the CRD and applies the example Agent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Build (first run only) with progress on the terminal before the demo starts its control plane.
hack/envtest.sh build
if .venv/bin/aura --help | grep -q '^  demo '; then exec .venv/bin/aura demo "$@"; fi
eval "$(hack/envtest.sh up)"
kubectl apply -f crds/
kubectl wait --for=condition=Established --timeout=60s crd/agents.aura.dev >/dev/null
kubectl apply -f manifests/examples/
kubectl get agents -o wide
echo
echo "The control plane keeps running. Use it with:  $(hack/envtest.sh env)"
echo "Stop it with:  make envtest-down"
