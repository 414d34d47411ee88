"""The past-due grace sweep: with `config.past_due_grace` set, a past_due subscription keeps
its Agent running for the grace period; no Stripe event marks the period's end, so this sweep
(run periodically by the app) suspends the Agents whose `stripe-past-due-since` is older than
the grace period.

Each candidate is re-read under its subscription's lock before the write, so an event that
paid the invoice in the meantime wins; the write is a compare-and-set like every other. A
failed write is logged and left for the next sweep.
"""

from __future__ import annotations

import logging

from aura.bridge.agents import LABEL_SUBSCRIPTION, Agent, AgentStore
from aura.bridge.errors import Permanent, Retryable
from aura.bridge.keyed_locks import KeyedLocks
from aura.models import DesiredState

log = logging.getLogger(__name__)
REASON = "subscription past due; grace period over"


def _overdue(agent: Agent, now: float, grace: float) -> bool:
    since = agent.past_due_since
    if since is None or agent.desired_state in (DesiredState.SUSPENDED, DesiredState.DELETED):
        return False
    return now - since >= grace


class GraceSweep:
    def __init__(self, store: AgentStore, locks: KeyedLocks, grace: float) -> None:
        self.store = store
        self.locks = locks
        self.grace = grace

    async def sweep(self, now: float) -> int:
        """Suspend every Agent past its grace period at `now`; returns how many were."""
        suspended = 0
        for agent in await self.store.select(LABEL_SUBSCRIPTION):
            if not _overdue(agent, now, self.grace) or agent.subscription_id is None:
                continue
            async with self.locks.hold(agent.subscription_id):
                fresh = await self.store.get(*agent.key)
                if fresh is None or fresh.past_due_since is None:
                    continue
                if fresh.desired_state in (DesiredState.SUSPENDED, DesiredState.DELETED):
                    continue
                patch = {
                    "spec": {
                        "desiredState": DesiredState.SUSPENDED.value,
                        "desiredStateReason": REASON,
                    }
                }
                try:
                    await self.store.patch(fresh, patch)
                except (Retryable, Permanent) as exc:
                    log.warning("grace sweep: %s", exc)
                    continue
                suspended += 1
        return suspended
