#!/usr/bin/env bash
# The main job: `aura demo` (the whole billing lifecycle against the sandbox, no cloud account).
# The control-plane binaries are built first (first run only), with progress on the terminal.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/envtest.sh build
exec .venv/bin/aura demo "$@"
