#!/usr/bin/env bash
# Static checks: ruff lint, ruff format, mypy --strict, import contracts (layering), and the
# generated CRD being current.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/ruff check operator tests hack
.venv/bin/ruff format --check operator tests hack
.venv/bin/mypy --strict operator/
.venv/bin/lint-imports pyproject.toml
.venv/bin/aura crd --check crds/aura.dev_agents.yaml
.venv/bin/aura crd --kind AgentBudget --check crds/aura.dev_agentbudgets.yaml
echo "lint: ok"
