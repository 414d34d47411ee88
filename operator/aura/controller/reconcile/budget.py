"""Money prerequisites of a server create: the namespace's AgentBudgets, and Hetzner's own
project server limit.

`ensure_budget_allows` is a prerequisite step (`agent.PREREQUISITE_STEPS`): it runs before a
provisioning attempt begins, reads the namespace's AgentBudgets from the apiserver and, while a
`BlockNew` threshold is active, keeps the Agent in `Queued` (ServerReady Unknown, reason
`BudgetBlocked`, the message naming the budget and the fix). No attempt begins, so no deadline
runs, no slot is held and no Hetzner call is made. The Agent polls every `--poll-interval`,
so a raised limit releases it within seconds. An Agent that has a server is never gated.

`project_limit` turns Hetzner's `resource_limit_exceeded` on create into the same kind of wait
(reason `ProjectServerLimit`, with the fix), instead of a failed attempt.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.conditions import FALSE, UNKNOWN, Reason
from aura.controller.reconcile import attempt
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.cost import gate
from aura.cost.budget import PROJECT_LIMIT_FIX

PROJECT_LIMIT_RETRY = 30.0


async def ensure_budget_allows(ctx: AgentContext) -> StepResult:
    """Done unless an AgentBudget of the namespace holds new servers back."""
    if ctx.status.server is not None and ctx.status.server.id is not None:
        return DONE
    why = await gate.budget_hold(ctx.op.budgets, ctx.ref.namespace)
    held = conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY)
    if why is None:
        if held == Reason.BUDGET_BLOCKED:
            ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.PENDING, "budget allows it again")
        return DONE
    attempt.abandon(ctx)  # an attempt queued for a slot starts over once released
    if held != Reason.BUDGET_BLOCKED:
        ctx.event("Warning", "BudgetBlocked", why)
    ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.BUDGET_BLOCKED, why)
    ctx.set(conditions.READY, FALSE, Reason.BUDGET_BLOCKED, why)
    return Wait(ctx.config.poll_interval, "held by a budget")


def project_limit(ctx: AgentContext) -> StepResult:
    """Hetzner refused the create for the project's server limit: wait, with the fix named."""
    attempt.abandon(ctx)  # the attempt (and its deadline) restarts once a server can be made
    if conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY) != (
        Reason.PROJECT_SERVER_LIMIT
    ):
        ctx.event("Warning", "ProjectServerLimit", PROJECT_LIMIT_FIX)
    ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.PROJECT_SERVER_LIMIT, PROJECT_LIMIT_FIX)
    return Wait(max(ctx.config.poll_interval, PROJECT_LIMIT_RETRY), "project server limit")
