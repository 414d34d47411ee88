"""Retention after cancellation (`--retain-after-delete`): before a deleted Agent's server goes,
its data goes into a final checkpoint that is kept for the window, so a customer who comes
back gets the agent back (`spec.source.checkpoint`, `clone`); `erasure` ends the window.

The final checkpoint is an ordinary AgentCheckpoint with a name derived from the Agent's UID
(`final_name`), so creating it is idempotent across passes and crashes, and the checkpoint
controller recognises it as the one checkpoint an Agent being deleted may still take. It is
`consistent`, `Retain` (the object and image outlive the Agent: `retention.delete_with_agent`
skips it), labelled `aura.dev/final-checkpoint=true`, `aura.dev/retained-agent=<name>` and,
when the Agent is billed, `aura.dev/stripe-customer=<customer>` (the bridge finds it by these
on a returning checkout); `aura.dev/retain-until` holds the end of the window (RFC 3339).

The contract of `ensure_final_checkpoint`, run by the finalizer before any cloud object is
deleted: the server is never deleted while its data is not in a ready final checkpoint. A
failed one is deleted (its partial image with it) and taken again; the server waits, powered
as it was, and the Agent's Events say why.

A hibernated Agent has no server: its data is already in its hibernation checkpoint, which
`keep_hibernation_checkpoint` turns into the final one (the same labels and annotation,
`Retain`) instead of taking another. Its Hetzner image keeps the labels it was created with
(no customer label): the bridge and the erasure find it through the AgentCheckpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aura.checkpoint_models import CHECKPOINT_KIND, CHECKPOINT_PLURAL
from aura.controller import conditions, shards
from aura.controller.checkpoints.store import CheckpointStore
from aura.controller.conditions import FALSE, Reason
from aura.controller.reconcile.context import AgentContext, StepResult, Wait
from aura.wire import API_VERSION

LABEL_FINAL = "aura.dev/final-checkpoint"
LABEL_AGENT = "aura.dev/retained-agent"
LABEL_CUSTOMER = "aura.dev/stripe-customer"  # the bridge's customer label, same key
ANNOTATION_RETAIN_UNTIL = "aura.dev/retain-until"


def final_name(agent: str, uid: str) -> str:
    """The final checkpoint of the Agent `agent` with UID `uid` (a DNS subdomain name)."""
    return f"{agent[:230]}-final-{uid[:8]}"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def image_labels(checkpoint: str, agent: dict[str, Any] | None) -> dict[str, str]:
    """Extra labels of a final checkpoint's image: the customer, so a person (or a support
    tool) finds a customer's retained data in Hetzner too. Empty for other checkpoints."""
    if agent is None or checkpoint != final_name(
        agent["metadata"]["name"], agent["metadata"]["uid"]
    ):
        return {}
    customer = ((agent.get("spec") or {}).get("billing") or {}).get("customerId")
    return {LABEL_CUSTOMER: customer} if customer else {}


def _retained(ctx: AgentContext, until: datetime) -> dict[str, Any]:
    """The metadata that makes a checkpoint the final one of this Agent."""
    labels = {LABEL_FINAL: "true", LABEL_AGENT: ctx.ref.name, **shards.own_label(ctx.config.shard)}
    if ctx.spec.billing is not None and (customer := ctx.spec.billing.customer_id):
        labels[LABEL_CUSTOMER] = customer
    return {"labels": labels, "annotations": {ANNOTATION_RETAIN_UNTIL: iso(until)}}


def _body(ctx: AgentContext, name: str, until: datetime) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": CHECKPOINT_KIND,
        "metadata": {"name": name, "namespace": ctx.ref.namespace, **_retained(ctx, until)},
        "spec": {"agentName": ctx.ref.name, "mode": "consistent", "deletionPolicy": "Retain"},
    }


def _ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("phase") == "Succeeded" and bool(status.get("readyToUse"))


async def keep_hibernation_checkpoint(ctx: AgentContext, store: CheckpointStore) -> None:
    """Make the ready hibernation checkpoint of a server-less Agent its final checkpoint
    (idempotent: one already labelled keeps its window). No-op without one."""
    hibernation = ctx.status.hibernation
    if hibernation is None:
        return
    name, namespace = hibernation.checkpoint, ctx.ref.namespace
    found = await store.get(CHECKPOINT_PLURAL, namespace, name)
    if found is None or not _ready(found):
        return
    if (found["metadata"].get("labels") or {}).get(LABEL_FINAL) == "true":
        return
    until = ctx.now() + timedelta(seconds=ctx.config.retain_after_delete)
    patch = {"metadata": _retained(ctx, until), "spec": {"deletionPolicy": "Retain"}}
    await store.patch(CHECKPOINT_PLURAL, namespace, name, patch)
    ctx.event(
        "Normal",
        "FinalCheckpoint",
        f"keeping hibernation checkpoint {name} as the final checkpoint; kept until "
        f"{iso(until)} (--retain-after-delete)",
    )


async def ensure_final_checkpoint(ctx: AgentContext) -> StepResult | None:
    """None when the finalizer may delete the server (retention off, no server, or its data is
    in a ready final checkpoint); else Wait (see the module docstring)."""
    window = ctx.config.retain_after_delete
    store = ctx.op.checkpoints
    if window <= 0 or store is None:
        return None
    if ctx.status.server is None or ctx.status.server.id is None:
        await keep_hibernation_checkpoint(ctx, store)
        return None
    name = final_name(ctx.ref.name, ctx.ref.uid)
    found = await store.get(CHECKPOINT_PLURAL, ctx.ref.namespace, name)
    wait = Wait(ctx.config.checkpoint_poll_interval, f"final checkpoint {name}")
    if found is None:
        until = ctx.now() + timedelta(seconds=window)
        if await store.create(CHECKPOINT_PLURAL, ctx.ref.namespace, _body(ctx, name, until)):
            ctx.event(
                "Normal",
                "FinalCheckpoint",
                f"taking final checkpoint {name} before the server is deleted; kept until "
                f"{iso(until)} (--retain-after-delete)",
            )
        _waiting(ctx, f"taking final checkpoint {name}; the server is deleted once it is ready")
        return wait
    status = found.get("status") or {}
    if status.get("phase") == "Failed":
        why = (status.get("error") or {}).get("message", "unknown error")
        await store.delete(CHECKPOINT_PLURAL, ctx.ref.namespace, name)
        ctx.event(
            "Warning",
            "FinalCheckpointFailed",
            f"final checkpoint {name} failed ({why}); the server is kept and it is taken again",
        )
        _waiting(ctx, f"final checkpoint {name} failed: {why}; retrying, the server is kept")
        return wait
    if not _ready(found):
        _waiting(ctx, f"taking final checkpoint {name}; the server is deleted once it is ready")
        return wait
    return None


def _waiting(ctx: AgentContext, message: str) -> None:
    ctx.set(conditions.READY, FALSE, Reason.DELETING, message)
