#!/usr/bin/env bash
# Static checks: ruff lint, ruff format, mypy --strict, import contracts (layering), and the
# generated CRD being current.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/ruff check operator tests hack
.venv/bin/ruff format --check operator tests hack
.venv/bin/mypy --strict operator/
.venv/bin/lint-imports pyproject.toml
.venv/bin/aura crd --kind agent --check crds/aura.dev_agents.yaml
.venv/bin/aura crd --kind agentcheckpoint --check crds/aura.dev_agentcheckpoints.yaml
.venv/bin/aura crd --kind agentrestore --check crds/aura.dev_agentrestores.yaml
.venv/bin/aura crd --kind agentbudget --check crds/aura.dev_agentbudgets.yaml
.venv/bin/aura crd --kind agentimage --check crds/aura.dev_agentimages.yaml
.venv/bin/aura crd --kind agentpool --check crds/aura.dev_agentpools.yaml
echo "lint: ok"
