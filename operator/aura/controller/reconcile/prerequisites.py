"""Prerequisites before money: what the configuration will need, checked before any cloud call.

The playbook's gateway authenticates by token unless `--ansible-extra-vars` sets another
`runtime_gateway_auth_mode`, so a token must reach the server:

- with `spec.runtime.secretRef`, that Secret must exist and hold `OPENCLAW_GATEWAY_TOKEN`;
- without it, the operator generates a token into a Secret it owns (`<agent>-gateway-token`,
  deleted with the Agent) instead of letting the playbook fail on the server later.

While a prerequisite is missing the Agent waits: ServerReady is Unknown with reason
`WaitingForRuntimeSecret` and a message naming the Secret and the missing key (phase Queued),
no provisioning attempt begins (no deadline, no retry budget, no slot), and no Hetzner or
Tailscale call is made. The pass ends without a retry: the Secret watch (`handlers.py`) starts
the next pass when the Secret is created or changed. Once the Agent has a server the check no
longer gates anything; the configure step reads the Secret again and reports what it lacks.
"""

from __future__ import annotations

import secrets as token_source

from aura.controller import conditions, errors, naming
from aura.controller.conditions import UNKNOWN, Reason
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait

GATEWAY_TOKEN_KEY = "OPENCLAW_GATEWAY_TOKEN"  # noqa: S105 (a key name)
RUNTIME_ENV_SUFFIX = "_API_KEY"
AUTH_MODE_VAR = "runtime_gateway_auth_mode"


def token_required(ctx: AgentContext) -> bool:
    """Whether the playbook will demand `OPENCLAW_GATEWAY_TOKEN` (its default: token auth)."""
    return ctx.config.ansible_extra_vars.get(AUTH_MODE_VAR, "token") == "token"


async def ensure_prerequisites(ctx: AgentContext) -> StepResult:
    """Done when the configuration will have what it needs; else Wait for the Secret."""
    if ctx.status.server is not None and ctx.status.server.id is not None:
        return DONE
    missing = await _missing(ctx)
    if missing is not None:
        ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.WAITING_FOR_RUNTIME_SECRET, missing)
        return Wait(None, missing)
    if (
        conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY)
        == Reason.WAITING_FOR_RUNTIME_SECRET
    ):
        ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.PENDING, "runtime Secret found")
    return DONE


async def _missing(ctx: AgentContext) -> str | None:
    """What is missing, in words naming the Secret and the key; None when nothing is."""
    ref = ctx.spec.runtime.secret_ref
    if ref is None:
        if token_required(ctx):
            await _generated_token(ctx)
        return None
    data = await ctx.op.secrets.get(ctx.ref.namespace, ref.name)
    if data is None:
        return f"waiting for Secret {ref.name} (spec.runtime.secretRef): it does not exist"
    if token_required(ctx) and not data.get(GATEWAY_TOKEN_KEY):
        return (
            f"waiting for Secret {ref.name} (spec.runtime.secretRef) to hold key "
            f"{GATEWAY_TOKEN_KEY}"
        )
    return None


async def runtime_env(ctx: AgentContext) -> dict[str, str]:
    """What the configure step hands the playbook: provider API keys and the gateway token."""
    ref = ctx.spec.runtime.secret_ref
    if ref is None:
        if not token_required(ctx):
            return {}
        return {GATEWAY_TOKEN_KEY: await _generated_token(ctx)}
    data = await ctx.op.secrets.get(ctx.ref.namespace, ref.name)
    if data is None:
        raise errors.Retryable(f"runtime Secret {ref.name} not found")
    return {
        k: v for k, v in data.items() if k.endswith(RUNTIME_ENV_SUFFIX) or k == GATEWAY_TOKEN_KEY
    }


async def _generated_token(ctx: AgentContext) -> str:
    """The token in the operator's own Secret, generated (once) when the Secret is missing."""
    name = naming.gateway_token_secret(ctx.ref)
    data = await ctx.op.secrets.get(ctx.ref.namespace, name)
    if data is None:
        data = {GATEWAY_TOKEN_KEY: token_source.token_urlsafe(32)}
        labels = naming.secret_labels(ctx.ref, "gateway-token")
        if await ctx.op.secrets.create(ctx.ref, name, data, labels):
            ctx.event("Normal", "GatewayTokenGenerated", f"gateway token stored in Secret {name}")
        else:  # created by a concurrent pass: use that one
            data = await ctx.op.secrets.get(ctx.ref.namespace, name) or data
    return data[GATEWAY_TOKEN_KEY]


async def delete_generated_token(ctx: AgentContext) -> None:
    """Delete the operator's gateway-token Secret (a missing one counts as done)."""
    await ctx.op.secrets.delete(ctx.ref.namespace, naming.gateway_token_secret(ctx.ref))
