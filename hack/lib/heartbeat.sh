# Sourced by the build scripts: run a long step with a heartbeat, so a first run is never silent.
#
#   with_heartbeat PREFIX LABEL COMMAND [ARGS...]
#
# Runs COMMAND in the foreground (a shell function works too, and may `exit` the script) and,
# every $AURA_HEARTBEAT_SECONDS (default 30) seconds while it runs, prints to stderr
#
#   PREFIX: still LABEL (45s elapsed)
#
# Returns COMMAND's exit status. COMMAND runs as a plain statement (not in an `if` or `||`), so
# under `set -e` it keeps failing the way it would without the heartbeat. The heartbeat is a background loop that stops when COMMAND
# returns, and also on its own as soon as the calling script is gone (a `die` inside COMMAND),
# so it never outlives the build it reports on.

with_heartbeat() {
  local prefix="$1" label="$2"
  shift 2
  local interval="${AURA_HEARTBEAT_SECONDS:-30}" parent=$$ started=$SECONDS beat rc=0
  (
    trap - EXIT
    last=$SECONDS
    while sleep 1; do
      # Gone, or a zombie not yet reaped by whoever started the script: stop.
      stat=$(cat "/proc/$parent/stat" 2>/dev/null) || exit 0
      stat=${stat##*) }
      [[ "${stat%% *}" != Z ]] || exit 0
      if ((SECONDS - last >= interval)); then
        last=$SECONDS
        printf '%s: still %s (%ss elapsed)\n' "$prefix" "$label" "$((SECONDS - started))" >&2
      fi
    done
  ) 8>&- 9>&- </dev/null &
  beat=$!
  "$@"
  rc=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  return "$rc"
}
