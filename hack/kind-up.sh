#!/usr/bin/env bash
# Run Aura in a local kind cluster: create the cluster (if missing), build the image, load it
# into the cluster, apply crds/ and manifests/, and wait for both Deployments to roll out.
# Needs Docker (a running engine), kind and kubectl; idempotent, so re-run it after changes.
#
#   hack/kind-up.sh
#
# Environment:
#   AURA_KIND_CLUSTER        cluster name (default: aura; kubectl context kind-<name>)
#   AURA_IMAGE               image to build and deploy (default: ghcr.io/aura-dev/aura:0.1.0)
#   AURA_OPERATOR_ENV_FILE   KEY=value file replacing the placeholder aura-operator-credentials
#   AURA_BRIDGE_ENV_FILE     KEY=value file replacing the placeholder aura-bridge-secrets
# Without the env files the pods run with placeholder credentials: they start, but no real
# server or tailnet key can be created. See README.md, "With Docker: kind".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${AURA_KIND_CLUSTER:-aura}"
IMAGE="${AURA_IMAGE:-ghcr.io/aura-dev/aura:0.1.0}"
CONTEXT="kind-$CLUSTER"
NAMESPACE=aura-system

log() { printf 'kind-up: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ "${IMAGE##*/}" == *:* ]] || die "AURA_IMAGE needs a tag (name:tag): $IMAGE"

need() {
  local tool="$1"; shift
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found on PATH. $*"
}
need docker "This script builds the image with Docker: install it" \
  "(https://docs.docker.com/get-docker/), or without Docker use hack/envtest.sh (README)."
need kind "Install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)."
need kubectl "Install kubectl (https://kubernetes.io/docs/tasks/tools/)."
docker info >/dev/null 2>&1 ||
  die "docker is installed but the Docker engine does not answer (is the daemon running," \
    "and may this user use it?)."

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "cluster $CLUSTER exists"
else
  log "creating cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 120s
fi
k() { kubectl --context "$CONTEXT" "$@"; }

before="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
log "building $IMAGE"
docker build -t "$IMAGE" "$ROOT"
after="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
log "loading $IMAGE into $CLUSTER"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# The CRDs first, and established, so the ClusterKopfPeering in manifests/ has its kind.
k apply -k "$ROOT/crds"
k wait --for=condition=Established --timeout=60s \
  crd/agents.aura.dev crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev

# A throw-away overlay: the image built here, and real Secrets when env files are given.
overlay="$(mktemp -d)"
trap 'rm -rf "$overlay"' EXIT
ln -s "$ROOT/manifests" "$overlay/base"   # kustomize refuses absolute resource paths
{
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
  printf 'resources:\n- base\n'
  printf 'images:\n- name: ghcr.io/aura-dev/aura\n  newName: %s\n  newTag: "%s"\n' \
    "${IMAGE%:*}" "${IMAGE##*:}"
  generators=""
  for pair in "aura-operator-credentials:${AURA_OPERATOR_ENV_FILE:-}" \
              "aura-bridge-secrets:${AURA_BRIDGE_ENV_FILE:-}"; do
    name="${pair%%:*}" file="${pair#*:}"
    [[ -n "$file" ]] || continue
    [[ -f "$file" ]] || die "$file (for Secret $name) does not exist"
    cp "$file" "$overlay/$name.env"
    generators+="- {name: $name, namespace: $NAMESPACE, behavior: replace, envs: [$name.env]}"$'\n'
  done
  if [[ -n "$generators" ]]; then
    printf 'generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n%s' "$generators"
  fi
} >"$overlay/kustomization.yaml"
k apply -k "$overlay"

# Same tag, new image: the Deployments would keep the old pods, so restart them.
if [[ -n "$before" && "$before" != "$after" ]]; then
  log "image changed: restarting the Deployments"
  k -n "$NAMESPACE" rollout restart deployment/aura-operator deployment/aura-bridge
fi
for deployment in aura-operator aura-bridge; do
  k -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout=180s
done
log "ready: kubectl --context $CONTEXT -n $NAMESPACE get pods; sample Agents in manifests/examples/"
