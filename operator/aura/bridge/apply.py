"""Applying an observed subscription state to one existing Agent: at most one compare-and-set.

In order:

1. The Agent already records this event's id: `DUPLICATE`.
2. The state is older than the one the Agent records (`stripe-state-as-of`, or a newer time
   confirmed without a write, kept here in memory): `STALE`, not applied.
3. The Agent is a `deleted` record: `FINAL`.
4. A fresh re-read that confirms what the Agent already says (same desired state, same
   past-due clock) writes nothing: `UNCHANGED`, and its as-of time is remembered for step 2.
   Most deliveries (renewals, metadata updates) end here, which keeps the apiserver off the
   critical path. So the Agent's event id and time are those of the last event that changed it.
5. Otherwise one merge patch carries the desired state (if it changes) and the bookkeeping
   annotations together, with the resourceVersion that was read (`AgentStore.patch`): a
   concurrent writer makes it fail with `Conflict`, which the caller retries from a fresh read.
"""

from __future__ import annotations

import logging
from typing import Any

from aura.bridge import dunning, mapping, price
from aura.bridge.agents import (
    ANNOTATION_AS_OF,
    ANNOTATION_EVENT_CREATED,
    ANNOTATION_EVENT_ID,
    ANNOTATION_HIBERNATE_AT,
    ANNOTATION_PAST_DUE_SINCE,
    Agent,
    AgentStore,
)
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import FinalState, NotFound
from aura.bridge.lru import Lru
from aura.bridge.metrics import Metrics
from aura.bridge.observe import Observed
from aura.bridge.outcome import Outcome
from aura.bridge.signature import StripeEvent
from aura.models import DesiredState

log = logging.getLogger(__name__)


class Applier:
    def __init__(self, config: BridgeConfig, store: AgentStore, metrics: Metrics) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        # Per Agent, the newest as-of time confirmed without a write (step 4).
        self._confirmed: Lru[tuple[str, str], float] = Lru(config.dedup_cache_size)

    async def apply_to(
        self,
        agent: Agent,
        event: StripeEvent,
        route: mapping.EventRoute,
        observed: Observed,
        now: float,
    ) -> Outcome:
        """The outcome of applying `observed` to `agent`; see the module docstring."""
        if agent.last_event_id == event.id:
            return Outcome.DUPLICATE
        recorded = max(agent.state_as_of or 0.0, self._confirmed.get(agent.key) or 0.0)
        if observed.as_of < recorded:
            return Outcome.STALE
        current = agent.desired_state
        past_due_since = agent.past_due_since
        decision = mapping.decide(
            observed.status,
            reason=observed.reason(route, event),
            past_due_since=past_due_since,
            now=now,
            grace=self.config.past_due_grace,
            hibernate_after=dunning.hibernate_after(
                observed.subscription, self.config.hibernate_after
            )[0],
            # Without the subscription its plan is unknown: the recorded deadline stands.
            hibernate_at=agent.hibernate_at
            if past_due_since is not None and observed.subscription is None
            else None,
        )
        if current == DesiredState.DELETED:
            return Outcome.FINAL
        changed = decision.state is not None and decision.state != current
        repriced = price.price_change(dict(agent.obj), observed.subscription)
        if (
            not changed
            and not repriced
            and not observed.from_event
            and decision.past_due_since == past_due_since
            and decision.hibernate_at == agent.hibernate_at
        ):
            self._confirm(agent.key, observed.as_of)
            return Outcome.UNCHANGED
        patch: dict[str, Any] = {
            "metadata": {
                "annotations": {
                    ANNOTATION_EVENT_ID: event.id,
                    ANNOTATION_EVENT_CREATED: str(event.created),
                    ANNOTATION_AS_OF: f"{observed.as_of:.3f}",
                    ANNOTATION_PAST_DUE_SINCE: None
                    if decision.past_due_since is None
                    else f"{decision.past_due_since:.3f}",
                    ANNOTATION_HIBERNATE_AT: None
                    if decision.hibernate_at is None
                    else f"{decision.hibernate_at:.3f}",
                }
            }
        }
        if changed and decision.state is not None:
            patch["spec"] = {
                "desiredState": decision.state.value,
                "desiredStateReason": decision.reason,
            }
        if repriced:  # the subscription's price, for revenue and margin (aura.cost)
            patch.setdefault("spec", {}).update(repriced)
        try:
            with self.metrics.kube_write.time():
                await self.store.patch(agent, patch)
        except FinalState:
            return Outcome.FINAL
        except NotFound:
            return Outcome.UNKNOWN_SUBSCRIPTION
        if changed:
            log.info(
                "agent %s/%s: desiredState %s -> %s (%s)",
                agent.namespace,
                agent.name,
                current,
                decision.state,
                decision.reason,
            )
        return Outcome.APPLIED if changed else Outcome.UNCHANGED

    def _confirm(self, key: tuple[str, str], as_of: float) -> None:
        self._confirmed.put(key, max(as_of, self._confirmed.get(key) or 0.0))
