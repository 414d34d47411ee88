"""The BlockNew gate: may this namespace get a new server now? (A prerequisite checked before
any Hetzner create, see `controller/reconcile/agent.py`.)

It reads the namespace's AgentBudgets from the apiserver at every check (real state, not a
cache that a restart empties) and decides from each budget's *current* spec and its last
computed spend (`budget.blocks_new`), so raising a limit lets Agents go at their next poll.
"""

from __future__ import annotations

from pydantic import ValidationError

from aura.cost import budget, metrics
from aura.cost.budget_models import AgentBudgetSpec, AgentBudgetStatus
from aura.cost.kube import BudgetReader


async def budget_hold(reader: BudgetReader | None, namespace: str) -> str | None:
    """Why a new server must wait (naming the budget and the fix), or None to go ahead."""
    if reader is None:
        return None
    for obj in await reader.list_budgets(namespace):
        name = obj["metadata"]["name"]
        try:
            spec = AgentBudgetSpec.model_validate(obj.get("spec") or {})
            status = AgentBudgetStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            continue  # the apiserver validates the spec; an old object is not a reason to block
        why = budget.blocks_new(spec, status)
        if why is not None:
            metrics.BUDGET_BLOCKED_CREATES.labels(namespace).inc()
            return (
                f"AgentBudget {namespace}/{name}: {why}; raise spec.limit or remove the "
                "BlockNew threshold to let new servers start"
            )
    return None
