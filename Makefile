.DEFAULT_GOAL := help
SHELL := /bin/bash

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install system packages, the virtualenv and the control-plane binaries
	hack/install-deps.sh

.PHONY: venv
venv: ## Create .venv with Aura and its dev tools
	hack/bootstrap.sh

.PHONY: demo
demo: venv ## Run the main job: the sandbox demo (no cloud account needed)
	hack/demo.sh

.PHONY: test
test: ## Run lint, type checks and the whole test suite on a real local apiserver
	hack/test.sh

.PHONY: lint
lint: venv ## ruff check, ruff format --check, mypy --strict, CRD freshness
	hack/lint.sh

.PHONY: fmt
fmt: venv ## Format and auto-fix the code
	.venv/bin/ruff format operator tests hack && .venv/bin/ruff check --fix operator tests hack

.PHONY: crds
crds: venv ## Regenerate crds/ from the pydantic models
	.venv/bin/aura crd --kind agent > crds/aura.dev_agents.yaml
	.venv/bin/aura crd --kind agentcheckpoint > crds/aura.dev_agentcheckpoints.yaml
	.venv/bin/aura crd --kind agentrestore > crds/aura.dev_agentrestores.yaml
	.venv/bin/aura crd --kind agentbudget > crds/aura.dev_agentbudgets.yaml
	.venv/bin/aura crd --kind agentimage > crds/aura.dev_agentimages.yaml
	.venv/bin/aura crd --kind agentpool > crds/aura.dev_agentpools.yaml

.PHONY: envtest
envtest: ## Start the local kube-apiserver + etcd (prints the KUBECONFIG export)
	hack/envtest.sh up

.PHONY: envtest-down
envtest-down: ## Stop the local control plane
	hack/envtest.sh down

.PHONY: bench
bench: venv ## Run every benchmark under hack/bench/ (each starts and stops what it needs)
	@failed=""; for b in hack/bench/[!_]*.py; do echo "== $$b"; \
	  .venv/bin/python "$$b" || failed="$$failed $$b"; done; \
	if [[ -n "$$failed" ]]; then echo "bench: below target or failed:$$failed"; exit 1; fi
