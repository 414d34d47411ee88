"""Creating the Agent a completed subscription checkout asks for.

The checkout's `metadata.agent_name` (and optional `agent_namespace`, else
`config.default_namespace`) name the Agent; it is labelled with the customer and subscription,
sized by the plan of the subscription's prices, and starts in the desired state the observed
status implies (a newer early state, `early`, wins over the checkout's own). Refusals are
outcomes, never errors: an invalid name or unusable ids are `INVALID`; a subscription that
already ended is `IGNORED`. If the name exists and carries this subscription's label, the
checkout is a redelivery and is applied to it like any event (`apply`); if it belongs to
another subscription, `INVALID`.
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
    LABEL_CUSTOMER,
    LABEL_SUBSCRIPTION,
    Agent,
    AgentStore,
)
from aura.bridge.apply import Applier
from aura.bridge.config import BridgeConfig
from aura.bridge.early import EarlyStates
from aura.bridge.errors import AlreadyExists, Permanent, Retryable
from aura.bridge.metrics import Metrics
from aura.bridge.observe import Observed
from aura.bridge.outcome import Outcome
from aura.bridge.signature import StripeEvent
from aura.models import API_VERSION, KIND, DesiredState

log = logging.getLogger(__name__)
LABEL_VALUE_MAX = 63


class Creator:
    def __init__(
        self,
        config: BridgeConfig,
        store: AgentStore,
        metrics: Metrics,
        applier: Applier,
        early: EarlyStates,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.applier = applier
        self.early = early

    async def create(
        self,
        event: StripeEvent,
        route: mapping.EventRoute,
        sub_id: str,
        observed: Observed,
        now: float,
    ) -> Outcome:
        """The outcome of the checkout `event` for `sub_id`; see the module docstring."""
        obj = event.object
        reason = observed.reason(route, event)
        if (early := self.early.newer_than(sub_id, observed.as_of)) is not None:
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
            now=now,
            grace=self.config.past_due_grace,
            hibernate_after=dunning.hibernate_after(
                observed.subscription, self.config.hibernate_after
            )[0],
        )
        if decision.state is DesiredState.DELETED:
            log.info("checkout %s: subscription %s already ended", obj.get("id"), sub_id)
            return Outcome.IGNORED
        plan = self.config.plans.for_prices(
            mapping.price_ids(observed.subscription or {}) + mapping.price_ids(obj)
        )
        source = await self.store.retained_checkpoint(namespace, str(name), customer)
        annotations = {
            ANNOTATION_EVENT_ID: event.id,
            ANNOTATION_EVENT_CREATED: str(event.created),
            ANNOTATION_AS_OF: f"{observed.as_of:.3f}",
        }
        if decision.past_due_since is not None:
            annotations[ANNOTATION_PAST_DUE_SINCE] = f"{decision.past_due_since:.3f}"
        if decision.hibernate_at is not None:
            annotations[ANNOTATION_HIBERNATE_AT] = f"{decision.hibernate_at:.3f}"
        body: dict[str, Any] = {
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
        if source is not None:
            body["spec"]["source"] = {"checkpoint": source}
        try:
            with self.metrics.kube_write.time():
                created = await self.store.create(body)
        except AlreadyExists:
            existing = await self.store.get(namespace, str(name))
            if existing is not None and existing.subscription_id == sub_id:
                self.store.remember(sub_id, [existing])
                return await self.applier.apply_to(existing, event, route, observed, now)
            if existing is None or (source is not None and _returning(existing, customer)):
                if existing is not None and not existing.obj["metadata"].get("deletionTimestamp"):
                    await self.store.delete(existing)
                    log.info("agent %s/%s: deleted record replaced (%s returns)", *existing.key,
                             customer)  # fmt: skip
                raise Retryable(f"agent {namespace}/{name} is being replaced") from None
            log.warning(
                "checkout %s: agent %s/%s belongs to someone else", obj.get("id"), namespace, name
            )
            return Outcome.INVALID
        except Permanent as exc:
            log.warning(
                "checkout %s: cannot create agent %s/%s: %s", obj.get("id"), namespace, name, exc
            )
            return Outcome.INVALID
        self.store.remember(sub_id, [created])
        self.early.forget(sub_id)
        log.info("agent %s/%s created for %s", namespace, name, sub_id)
        return Outcome.CREATED


def _returning(existing: Agent, customer: str) -> bool:
    """Whether `existing` is a finished `deleted` record of `customer`'s (the operator wrote
    `status.deletedAt`: nothing of it is left in the clouds)."""
    status = existing.obj.get("status") or {}
    return (
        existing.desired_state == DesiredState.DELETED
        and existing.labels.get(LABEL_CUSTOMER) == customer
        and bool(status.get("deletedAt"))
    )
