"""One verified Stripe event in, one `Outcome` out; the Agent written at most once.

`Processor.handle()` is the whole path, one concern per module (README.md, "The Stripe bridge",
explains the rules for operators):

1. Dedup (`dedup`): an event id this process finished is a `DUPLICATE` and changes nothing;
   the id recorded on the Agent is the second layer (`apply`).
2. Routing (`mapping`): types outside `mapping.EVENT_ROUTES`, checkouts not in `subscription`
   mode and objects without a subscription are `IGNORED`.
3. The events of one subscription are serialized within the process (`keyed_locks`).
4. Observe (`observe`): by default the subscription is re-read from Stripe and its *current*
   status counts, so delivery order cannot matter; else the event's own object.
5. Apply, retried on conflicts and transient errors until `config.write_deadline` (`retry`),
   then `Retryable` escapes and the webhook answers 503 so Stripe redelivers:
   - the subscription's Agents found: one compare-and-set each (`apply`), which also drops
     states older than the recorded one (`STALE`) and keeps `deleted` records final (`FINAL`);
   - none, and the event is a checkout: the Agent is created (`creation`);
   - none otherwise: `UNKNOWN_SUBSCRIPTION`, and a state taken from the event's own object is
     kept for a checkout that arrives later (`early`).

The dunning sweep (`grace`: past-due grace, then hibernation) shares the subscription locks;
`sweep_grace()` runs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aura.bridge import mapping
from aura.bridge.agents import AgentStore
from aura.bridge.apply import Applier
from aura.bridge.config import BridgeConfig
from aura.bridge.creation import Creator
from aura.bridge.dedup import RecentEvents
from aura.bridge.early import EarlyStates
from aura.bridge.grace import GraceSweep
from aura.bridge.keyed_locks import KeyedLocks
from aura.bridge.metrics import Metrics
from aura.bridge.observe import Observed, Observer
from aura.bridge.outcome import Outcome
from aura.bridge.retry import retrying
from aura.bridge.signature import StripeEvent
from aura.bridge.stripe_api import StripeApi

__all__ = ["Outcome", "Processor"]
log = logging.getLogger(__name__)
# When one event reaches several Agents, the answer names the most telling outcome.
PREFERRED = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.FINAL, Outcome.STALE)
# Logged at DEBUG: most deliveries (renewals, confirmations, Stripe's retries) change nothing,
# and a line each is noise that cost a tenth of the bridge's CPU at 200 events/s. The outcome
# counter (`aura_bridge_webhook_events_total`) still counts every one.
ROUTINE = frozenset({Outcome.UNCHANGED, Outcome.DUPLICATE})


class Processor:
    """Applies events to Agents; see the module docstring. `clock` may be replaced (tests)."""

    def __init__(
        self,
        config: BridgeConfig,
        store: AgentStore,
        stripe_api: StripeApi | None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.config = config
        self.store = store
        self.clock = clock
        self._recent = RecentEvents(config.dedup_cache_size)
        self._locks = KeyedLocks()
        self._observer = Observer(config, stripe_api, self.metrics)
        self._early = EarlyStates(config.dedup_cache_size)
        self._applier = Applier(config, store, self.metrics)
        self._creator = Creator(config, store, self.metrics, self._applier, self._early)
        self._grace = GraceSweep(
            store,
            self._locks,
            config.past_due_grace,
            stripe_api if config.reread_subscription else None,
            config.stripe_timeout,
        )

    def seen(self, event_id: str) -> bool:
        """Whether this process already finished the event `event_id`."""
        return event_id in self._recent

    async def handle(self, event: StripeEvent) -> Outcome:
        """The outcome of `event`; raises `Retryable` if it could not be recorded."""
        if self.seen(event.id):
            return Outcome.DUPLICATE
        outcome = await self._handle(event)
        self._recent.add(event.id)
        log.log(
            logging.DEBUG if outcome in ROUTINE else logging.INFO,
            "stripe event %s (%s): %s",
            event.id,
            event.type,
            outcome.value,
            extra={"event_id": event.id, "event_type": event.type, "outcome": outcome.value},
        )
        return outcome

    async def _handle(self, event: StripeEvent) -> Outcome:
        route = mapping.EVENT_ROUTES.get(event.type)
        if route is None:
            return Outcome.IGNORED
        if route.source is mapping.Source.CHECKOUT and event.object.get("mode") != "subscription":
            return Outcome.IGNORED
        sub_id = mapping.subscription_id(route, event.object)
        if sub_id is None:
            return Outcome.IGNORED
        async with self._locks.hold(sub_id):
            observed = await self._observer.observe(event, route, sub_id, self.clock())
            if observed is None:
                return Outcome.IGNORED
            return await retrying(
                lambda: self._apply(event, route, sub_id, observed), self.config.write_deadline
            )

    async def _apply(
        self, event: StripeEvent, route: mapping.EventRoute, sub_id: str, observed: Observed
    ) -> Outcome:
        agents = await self.store.find_by_subscription(sub_id)
        if not agents:
            if route.source is mapping.Source.CHECKOUT:
                return await self._creator.create(event, route, sub_id, observed, self.clock())
            if observed.from_event:
                self._early.note(sub_id, observed, observed.reason(route, event))
            return Outcome.UNKNOWN_SUBSCRIPTION
        outcomes = [
            await self._applier.apply_to(agent, event, route, observed, self.clock())
            for agent in agents
        ]
        return next((o for o in PREFERRED if o in outcomes), outcomes[0])

    async def sweep_grace(self) -> int:
        """Apply the dunning steps that are due (suspend after the past-due grace, hibernate
        at the recorded deadline); returns how many Agents were written. The app runs it at
        start and periodically (see `grace`)."""
        return await self._grace.sweep(self.clock())
