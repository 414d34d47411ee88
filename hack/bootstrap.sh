#!/usr/bin/env bash
# Create .venv and install Aura with its dev extra, plus the sandbox and demo distribution
# (operator/pyproject.toml) beside it; a no-op when neither pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
stamp=.venv/.aura-installed
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" || operator/pyproject.toml -nt "$stamp" ]]; then
  echo "bootstrap: installing Aura, the sandbox and the dev tools into .venv" >&2
  # shellcheck source=hack/lib/heartbeat.sh
  source hack/lib/heartbeat.sh
  with_heartbeat bootstrap "installing (pip)" .venv/bin/pip install -q -e '.[dev]' -e ./operator
  touch "$stamp"
fi
