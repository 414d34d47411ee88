# Sourced by hack/envtest.sh and hack/cluster.sh: `go build` that says how far along it is.
#
#   go_build_progress LABEL WORKDIR OUT [GO BUILD ARGS...] -- PACKAGE...
#
# A cold Kubernetes build compiles ~2,000 packages over many minutes; `go build -v` names each
# package as it is compiled (cache hits are not named), so every 20 s one line reports how many
# of the dependency graph's packages have been compiled so far. The graph size is an upper
# bound: packages already in the Go build cache are never counted, so a warm build ends early.

_gobuild_log() { printf '%s: %s\n' "${GOBUILD_PREFIX:-build}" "$*" >&2; }

go_build_progress() {
  local label="$1" work="$2" out="$3"
  shift 3
  local args=() pkgs=()
  while (($#)) && [[ "$1" != -- ]]; do args+=("$1"); shift; done
  [[ "${1:-}" == -- ]] && shift
  pkgs=("$@")
  local total log started=$SECONDS rc
  total=$(cd "$work" && GOFLAGS=-mod=mod go list -deps "${pkgs[@]}" 2>/dev/null | wc -l) || total="?"
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
