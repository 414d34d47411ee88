# Sourced by hack/envtest.sh and hack/cluster.sh: `go build` that says how far along it is.
#
#   go_mod_tidy WORKDIR LABEL
#   go_build_progress LABEL WORKDIR OUT [GO BUILD ARGS...] -- PACKAGE...
#
# `go mod tidy` and `go list` download the module graph the first time (minutes for
# Kubernetes on a cold module cache): both run with a heartbeat line (hack/lib/heartbeat.sh).
#
# A cold Kubernetes build compiles ~2,000 packages over many minutes; `go build -v` names each
# package as it is compiled (cache hits are not named), so every 20 s one line reports how many
# of the dependency graph's packages have been compiled so far. The graph size is an upper
# bound: packages already in the Go build cache are never counted, so a warm build ends early.

_gobuild_log() { printf '%s: %s\n' "${GOBUILD_PREFIX:-build}" "$*" >&2; }
# shellcheck source=hack/lib/heartbeat.sh
source "$(dirname "${BASH_SOURCE[0]}")/heartbeat.sh"

_go_mod_tidy() { (cd "$1" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1) || true; }

# Resolve WORKDIR's go.mod (never fails: the build that follows reports what is missing).
go_mod_tidy() {
  _gobuild_log "resolving the $2 module graph"
  with_heartbeat "${GOBUILD_PREFIX:-build}" "resolving the $2 module graph (downloading modules)" \
    _go_mod_tidy "$1"
}

_go_list_deps() { (cd "$1" && shift && GOFLAGS=-mod=mod go list -deps "$@" 2>/dev/null | wc -l) || echo "?"; }

go_build_progress() {
  local label="$1" work="$2" out="$3"
  shift 3
  local args=() pkgs=()
  while (($#)) && [[ "$1" != -- ]]; do args+=("$1"); shift; done
  [[ "${1:-}" == -- ]] && shift
  pkgs=("$@")
  local total log started=$SECONDS rc
  total=$(with_heartbeat "${GOBUILD_PREFIX:-build}" "$label: listing packages" \
    _go_list_deps "$work" "${pkgs[@]}")
  log=$(mktemp)
  (cd "$work" && GOFLAGS=-mod=mod exec go build -v -trimpath "${args[@]}" -o "$out" "${pkgs[@]}") 2>"$log" &
  local pid=$! last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last >= 20)); then
      last=$SECONDS
      _gobuild_log "$label: $(grep -vc -e '^#' -e ' ' "$log" || true) of at most $total packages compiled, $((SECONDS - started))s elapsed"
    fi
  done
  wait "$pid" && rc=0 || rc=$?
  if ((rc != 0)); then
    _gobuild_log "$label: go build failed (exit $rc):"
    grep -e '^#' -e ' ' "$log" | tail -n 30 >&2 || true
    rm -f "$log"
    return "$rc"
  fi
  _gobuild_log "$label: done in $((SECONDS - started))s ($(grep -vc -e '^#' -e ' ' "$log" || true) packages compiled, the rest cached)"
  rm -f "$log"
}
