"""One verified Stripe event in, one `Outcome` out; the Agent written at most once.

Rules, in order (README.md, "The Stripe bridge", explains them for operators):

1. Dedup: an event id seen before (bounded in-memory LRU, then the id recorded on the Agent)
   is a `DUPLICATE` and changes nothing.
2. Routing: types outside `mapping.EVENT_ROUTES`, checkouts not in `subscription` mode and
   objects without a subscription are `IGNORED`.
3. State: by default the subscription is re-read from Stripe (bounded by
   `config.stripe_timeout`) and the desired state follows its *current* status, so delivery
   order cannot matter. If the re-read fails or is disabled, the event's own object is used.
4. Ordering: every write records `stripe-state-as-of` (the re-read time, or the event's
   `created` when the event's object was used). A state older than the recorded one is
   `STALE` and not applied. The compare and the write are one compare-and-set (the patch
   carries the resourceVersion it read), and events of one subscription are serialized
   within the process. Without a re-read, the newest state seen for a subscription that has
   no Agent yet is kept in memory (bounded) and used when its checkout arrives later.
   A fresh re-read that confirms what the Agent already says writes nothing (`UNCHANGED`);
   its as-of time is kept in memory and counts for the ordering check like a recorded one.
   So the Agent's event id and time are those of the last event that changed it.
5. Writes retry on conflicts and transient errors until `config.write_deadline`; then
   `RetryableError` escapes and the webhook answers 503 so Stripe redelivers.
6. An Agent whose desiredState is `deleted` is final: `FINAL`, never an error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from aura.bridge import mapping, price
from aura.bridge.agents import (
    ANNOTATION_AS_OF,
    ANNOTATION_EVENT_CREATED,
    ANNOTATION_EVENT_ID,
    ANNOTATION_PAST_DUE_SINCE,
    LABEL_CUSTOMER,
    LABEL_SUBSCRIPTION,
    Agent,
    AgentStore,
    key_of,
)
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    FinalStateError,
    NotFoundError,
    PermanentError,
    RetryableError,
)
from aura.bridge.metrics import Metrics
from aura.bridge.signature import StripeEvent
from aura.bridge.stripe_api import StripeApi
from aura.models import API_VERSION, KIND, DesiredState

log = logging.getLogger(__name__)
T = TypeVar("T")
LABEL_VALUE_MAX = 63


class Outcome(StrEnum):
    CREATED = "created"
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"
    INVALID = "invalid"
    FINAL = "final"


@dataclass(frozen=True)
class Observed:
    """The subscription state an event leads to."""

    status: str
    as_of: float
    from_event: bool
    subscription: dict[str, Any] | None


class _KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Processor:
    """Applies events to Agents; see the module docstring."""

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
        self.stripe_api = stripe_api
        self.clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._locks = _KeyedLocks()
        # Newest state seen (from an event's own object) for subscriptions without an Agent
        # yet: when Stripe cannot be re-read, a checkout delivered late still gets it right.
        self._early: OrderedDict[str, tuple[Observed, str]] = OrderedDict()
        # Per Agent, the newest as-of time confirmed without a write (see `_apply_to`).
        self._as_of: OrderedDict[tuple[str, str], float] = OrderedDict()

    # -- dedup -------------------------------------------------------------------------------

    def seen(self, event_id: str) -> bool:
        return event_id in self._seen

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        self._seen.move_to_end(event_id)
        while len(self._seen) > self.config.dedup_cache_size:
            self._seen.popitem(last=False)

    # -- entry point -------------------------------------------------------------------------

    async def handle(self, event: StripeEvent) -> Outcome:
        """The outcome of `event`; raises `RetryableError` if it could not be recorded."""
        if self.seen(event.id):
            return Outcome.DUPLICATE
        outcome = await self._handle(event)
        self._remember(event.id)
        log.info(
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
        obj = event.object
        if route.source is mapping.Source.CHECKOUT and obj.get("mode") != "subscription":
            return Outcome.IGNORED
        sub_id = mapping.subscription_id(route, obj)
        if sub_id is None:
            return Outcome.IGNORED
        async with self._locks.hold(sub_id):
            observed = await self._observe(event, route, sub_id)
            if observed is None:
                return Outcome.IGNORED
            return await self._retrying(lambda: self._apply(event, route, sub_id, observed))

    async def _observe(
        self, event: StripeEvent, route: mapping.EventRoute, sub_id: str
    ) -> Observed | None:
        if self.config.reread_subscription and self.stripe_api is not None:
            started = self.clock()
            try:
                with self.metrics.stripe_read.time():
                    sub = await asyncio.wait_for(
                        self.stripe_api.retrieve_subscription(sub_id), self.config.stripe_timeout
                    )
            except (BridgeError, TimeoutError) as exc:
                log.warning(
                    "re-reading %s failed (%s); using the event's own object",
                    sub_id,
                    exc or type(exc).__name__,
                )
            else:
                if sub is not None and isinstance(sub.get("status"), str):
                    return Observed(str(sub["status"]), started, False, sub)
                log.warning("stripe does not know subscription %s; using the event", sub_id)
        status = mapping.event_status(route, event.object)
        if status is None:
            return None
        sub_obj = event.object if route.source is mapping.Source.SUBSCRIPTION else None
        return Observed(status, float(event.created), True, sub_obj)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.config.write_deadline
        delay = 0.02
        while True:
            try:
                return await attempt()
            except RetryableError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.info("retrying after %s", exc)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    # -- applying ----------------------------------------------------------------------------

    async def _apply(
        self, event: StripeEvent, route: mapping.EventRoute, sub_id: str, observed: Observed
    ) -> Outcome:
        agents = await self.store.find_by_subscription(sub_id)
        if not agents:
            if route.source is mapping.Source.CHECKOUT:
                return await self._create(event, route, sub_id, observed)
            if observed.from_event:
                self._remember_early(sub_id, observed, self._reason(route, event, observed))
            return Outcome.UNKNOWN_SUBSCRIPTION
        outcomes = [await self._apply_to(agent, event, route, observed) for agent in agents]
        for preferred in (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.FINAL, Outcome.STALE):
            if preferred in outcomes:
                return preferred
        return outcomes[0]

    def _reason(self, route: mapping.EventRoute, event: StripeEvent, observed: Observed) -> str:
        object_id = str(event.object.get("id") or event.id)
        return mapping.reason_text(route, observed.status, object_id, observed.from_event)

    async def _apply_to(
        self, agent: Agent, event: StripeEvent, route: mapping.EventRoute, observed: Observed
    ) -> Outcome:
        annotations: dict[str, str] = agent["metadata"].get("annotations") or {}
        if annotations.get(ANNOTATION_EVENT_ID) == event.id:
            return Outcome.DUPLICATE
        key = key_of(agent)
        recorded = max(_float(annotations.get(ANNOTATION_AS_OF)) or 0.0, self._as_of.get(key, 0.0))
        if observed.as_of < recorded:
            return Outcome.STALE
        current = agent.get("spec", {}).get("desiredState")
        decision = mapping.decide(
            observed.status,
            reason=self._reason(route, event, observed),
            past_due_since=_float(annotations.get(ANNOTATION_PAST_DUE_SINCE)),
            now=self.clock(),
            grace=self.config.past_due_grace,
        )
        if current == DesiredState.DELETED:
            return Outcome.FINAL
        changed = decision.state is not None and decision.state != current
        past_due_since = _float(annotations.get(ANNOTATION_PAST_DUE_SINCE))
        repriced = price.price_change(agent, observed.subscription)
        if (
            not changed
            and not repriced
            and not observed.from_event
            and decision.past_due_since == past_due_since
        ):
            # Stripe confirmed what the Agent already says: nothing to write. Most deliveries
            # (renewals, metadata updates) end here, which keeps the apiserver out of the
            # critical path. The freshness is kept in memory for the ordering check.
            self._note_as_of(key, observed.as_of)
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
                }
            }
        }
        if changed and decision.state is not None:
            patch["spec"] = {
                "desiredState": decision.state.value,
                "desiredStateReason": decision.reason,
            }
        if repriced:
            patch.setdefault("spec", {}).update(repriced)
        try:
            with self.metrics.kube_write.time():
                await self.store.patch(agent, patch)
        except FinalStateError:
            return Outcome.FINAL
        except NotFoundError:
            return Outcome.UNKNOWN_SUBSCRIPTION
        if changed:
            log.info(
                "agent %s/%s: desiredState %s -> %s (%s)",
                agent["metadata"]["namespace"],
                agent["metadata"]["name"],
                current,
                decision.state,
                decision.reason,
            )
        return Outcome.APPLIED if changed else Outcome.UNCHANGED

    def _note_as_of(self, key: tuple[str, str], as_of: float) -> None:
        self._as_of[key] = max(as_of, self._as_of.get(key, 0.0))
        self._as_of.move_to_end(key)
        while len(self._as_of) > self.config.dedup_cache_size:
            self._as_of.popitem(last=False)

    def _remember_early(self, sub_id: str, observed: Observed, reason: str) -> None:
        known = self._early.get(sub_id)
        if known is None or known[0].as_of <= observed.as_of:
            self._early[sub_id] = (observed, reason)
            self._early.move_to_end(sub_id)
        while len(self._early) > self.config.dedup_cache_size:
            self._early.popitem(last=False)

    async def _create(
        self, event: StripeEvent, route: mapping.EventRoute, sub_id: str, observed: Observed
    ) -> Outcome:
        obj = event.object
        reason = self._reason(route, event, observed)
        early = self._early.get(sub_id)
        if early is not None and early[0].as_of > observed.as_of:
            observed, reason = early
        metadata = obj.get("metadata") or {}
        name = metadata.get("agent_name") if isinstance(metadata, dict) else None
        namespace = (metadata.get("agent_namespace") if isinstance(metadata, dict) else None) or (
            self.config.default_namespace
        )
        customer = mapping.customer_id(observed.subscription or {}) or mapping.customer_id(obj)
        if not mapping.valid_name(name) or not mapping.valid_name(namespace):
            log.warning("checkout %s: missing or invalid agent_name/agent_namespace", obj.get("id"))
            return Outcome.INVALID
        if customer is None or len(customer) > LABEL_VALUE_MAX or len(sub_id) > LABEL_VALUE_MAX:
            log.warning("checkout %s: customer or subscription id unusable", obj.get("id"))
            return Outcome.INVALID
        decision = mapping.decide(
            observed.status,
            reason=reason,
            past_due_since=None,
            now=self.clock(),
            grace=self.config.past_due_grace,
        )
        if decision.state is DesiredState.DELETED:
            log.info("checkout %s: subscription %s already ended", obj.get("id"), sub_id)
            return Outcome.IGNORED
        plan = self.config.plans.for_prices(
            mapping.price_ids(observed.subscription or {}) + mapping.price_ids(obj)
        )
        annotations = {
            ANNOTATION_EVENT_ID: event.id,
            ANNOTATION_EVENT_CREATED: str(event.created),
            ANNOTATION_AS_OF: f"{observed.as_of:.3f}",
        }
        if decision.past_due_since is not None:
            annotations[ANNOTATION_PAST_DUE_SINCE] = f"{decision.past_due_since:.3f}"
        body: Agent = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {LABEL_CUSTOMER: customer, LABEL_SUBSCRIPTION: sub_id},
                "annotations": annotations,
            },
            "spec": {
                "desiredState": (decision.state or DesiredState.RUNNING).value,
                "desiredStateReason": decision.reason,
                "billing": {
                    "customerId": customer,
                    "subscriptionId": sub_id,
                    **price.price_change({}, observed.subscription).get("billing", {}),
                },
                **plan.spec_sections(),
            },
        }
        try:
            with self.metrics.kube_write.time():
                created = await self.store.create(body)
        except AlreadyExistsError:
            existing = await self.store.get(namespace, str(name))
            labels = (existing or {}).get("metadata", {}).get("labels") or {}
            if existing is not None and labels.get(LABEL_SUBSCRIPTION) == sub_id:
                self.store.remember(sub_id, [existing])
                return await self._apply_to(existing, event, route, observed)
            log.warning(
                "checkout %s: agent %s/%s belongs to someone else", obj.get("id"), namespace, name
            )
            return Outcome.INVALID
        except PermanentError as exc:
            log.warning(
                "checkout %s: cannot create agent %s/%s: %s", obj.get("id"), namespace, name, exc
            )
            return Outcome.INVALID
        self.store.remember(sub_id, [created])
        self._early.pop(sub_id, None)
        log.info("agent %s/%s created for %s", namespace, name, sub_id)
        return Outcome.CREATED

    # -- grace period ------------------------------------------------------------------------

    async def sweep_grace(self) -> int:
        """Suspend Agents whose subscription has been past_due longer than the grace period;
        returns how many were suspended. Runs periodically when a grace period is set."""
        suspended = 0
        now = self.clock()
        for agent in await self.store.select(LABEL_SUBSCRIPTION):
            annotations = agent["metadata"].get("annotations") or {}
            since = _float(annotations.get(ANNOTATION_PAST_DUE_SINCE))
            state = agent.get("spec", {}).get("desiredState")
            if since is None or state in (DesiredState.SUSPENDED, DesiredState.DELETED):
                continue
            if now - since < self.config.past_due_grace:
                continue
            sub_id = agent["metadata"]["labels"][LABEL_SUBSCRIPTION]
            async with self._locks.hold(sub_id):
                fresh = await self.store.get(*_key(agent))
                if fresh is None:
                    continue
                fresh_since = _float(
                    (fresh["metadata"].get("annotations") or {}).get(ANNOTATION_PAST_DUE_SINCE)
                )
                if fresh_since is None or fresh.get("spec", {}).get("desiredState") in (
                    DesiredState.SUSPENDED,
                    DesiredState.DELETED,
                ):
                    continue
                patch = {
                    "spec": {
                        "desiredState": DesiredState.SUSPENDED.value,
                        "desiredStateReason": "subscription past due; grace period over",
                    }
                }
                try:
                    await self.store.patch(fresh, patch)
                except (RetryableError, PermanentError) as exc:
                    log.warning("grace sweep: %s", exc)
                    continue
                suspended += 1
        return suspended


def _key(agent: Agent) -> tuple[str, str]:
    return str(agent["metadata"]["namespace"]), str(agent["metadata"]["name"])
