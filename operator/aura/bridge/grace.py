"""The dunning sweep: the steps of the dunning timeline that no Stripe event marks.

Two deadlines live on the Agent as annotations, written with the state by `apply`/`creation`
when a subscription enters dunning (`mapping.decide`), so they survive bridge restarts:

- `aura.dev/stripe-past-due-since` + `config.past_due_grace`: a past_due Agent that still runs
  is `suspended`;
- `aura.dev/stripe-hibernate-at`: a suspended (or still running) unpaid Agent is
  `hibernated` (`dunning` says how long the grace is and who sets it).

The app runs `sweep()` once at start (deadlines that passed while no bridge ran) and then
periodically. Each candidate is re-read under its subscription's lock before the write, so an
event that paid the invoice in the meantime wins (it clears both annotations); the write is a
compare-and-set like every other, so replicas sweeping at the same time write once: the loser
gets a conflict, or finds the state already there. Before hibernating, the subscription is
re-read from Stripe when the bridge may: a subscription that is no longer in dunning (its
recovery event not yet delivered) is left alone for that event. A failed write is logged and
left for the next sweep.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aura.bridge import mapping
from aura.bridge.agents import LABEL_SUBSCRIPTION, Agent, AgentStore
from aura.bridge.errors import BridgeError, Permanent, Retryable
from aura.bridge.keyed_locks import KeyedLocks
from aura.bridge.stripe_api import StripeApi
from aura.models import DesiredState

log = logging.getLogger(__name__)
REASON = "subscription past due; grace period over"
_DONE = {DesiredState.HIBERNATED, DesiredState.DELETED}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def due(agent: Agent, now: float, grace: float) -> tuple[DesiredState, str] | None:
    """The state the dunning timeline asks of `agent` at `now` and why, or None."""
    state = agent.desired_state
    since = agent.past_due_since
    if since is None or state in _DONE:
        return None
    hibernate_at = agent.hibernate_at
    if hibernate_at is not None and now >= hibernate_at:
        reason = (
            f"subscription unpaid since {_iso(since)}; hibernated at the end of the dunning "
            f"grace ({_iso(hibernate_at)})"
        )
        return DesiredState.HIBERNATED, reason
    if state != DesiredState.SUSPENDED and now - since >= grace:
        return DesiredState.SUSPENDED, REASON
    return None


class GraceSweep:
    def __init__(
        self,
        store: AgentStore,
        locks: KeyedLocks,
        grace: float,
        stripe_api: StripeApi | None = None,
        stripe_timeout: float = 2.0,
    ) -> None:
        self.store = store
        self.locks = locks
        self.grace = grace
        self.stripe_api = stripe_api
        self.stripe_timeout = stripe_timeout

    async def sweep(self, now: float) -> int:
        """Apply every step of the timeline that is due at `now`; returns how many Agents
        were written."""
        written = 0
        for agent in await self.store.select(LABEL_SUBSCRIPTION):
            sub_id = agent.subscription_id
            if due(agent, now, self.grace) is None or sub_id is None:
                continue
            async with self.locks.hold(sub_id):
                fresh = await self.store.get(*agent.key)
                step = None if fresh is None else due(fresh, now, self.grace)
                if fresh is None or step is None:
                    continue
                state, reason = step
                if state is DesiredState.HIBERNATED and await self._recovered(sub_id):
                    continue
                patch = {"spec": {"desiredState": state.value, "desiredStateReason": reason}}
                try:
                    await self.store.patch(fresh, patch)
                except (Retryable, Permanent) as exc:
                    log.warning("dunning sweep: %s/%s: %s", fresh.namespace, fresh.name, exc)
                    continue
                log.info("agent %s/%s: desiredState -> %s (%s)", *fresh.key, state, reason)
                written += 1
        return written

    async def _recovered(self, sub_id: str) -> bool:
        """Whether Stripe says the subscription left dunning. Unknown (no key, Stripe down)
        counts as not recovered: the durable deadline stands, and hibernation keeps the data."""
        if self.stripe_api is None:
            return False
        try:
            sub = await asyncio.wait_for(
                self.stripe_api.retrieve_subscription(sub_id), self.stripe_timeout
            )
        except (BridgeError, TimeoutError) as exc:
            log.warning("dunning sweep: re-reading %s failed (%s)", sub_id, exc)
            return False
        status = sub.get("status") if sub else None
        if isinstance(status, str) and status not in mapping.DUNNING:
            log.info("dunning sweep: %s is %s now; its event will apply it", sub_id, status)
            return True
        return False
