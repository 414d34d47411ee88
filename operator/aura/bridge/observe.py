"""Which subscription state an event leads to (`Observed`), read from Stripe when possible.

With `config.reread_subscription` and a `StripeApi`, the subscription is re-read (bounded by
`config.stripe_timeout`) and its *current* status counts, as of the moment the read started:
delivery order then cannot matter. If the re-read fails, times out, or Stripe does not know the
subscription, the event's own object is used, as of the event's `created` time. None: the
event implies no status at all (nothing to apply).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aura.bridge import mapping
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import BridgeError
from aura.bridge.metrics import Metrics
from aura.bridge.signature import StripeEvent
from aura.bridge.stripe_api import StripeApi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    """The subscription state an event leads to."""

    status: str
    as_of: float
    """Unix time the status is known to be current at."""
    from_event: bool
    """True when the event's own object was used rather than a re-read."""
    subscription: dict[str, Any] | None
    """The subscription object (re-read, or the event's when it is one), for prices/customer."""

    def reason(self, route: mapping.EventRoute, event: StripeEvent) -> str:
        """`spec.desiredStateReason` for applying this state because of `event`."""
        object_id = str(event.object.get("id") or event.id)
        return mapping.reason_text(route, self.status, object_id, self.from_event)


class Observer:
    def __init__(
        self, config: BridgeConfig, stripe_api: StripeApi | None, metrics: Metrics
    ) -> None:
        self.config = config
        self.stripe_api = stripe_api
        self.metrics = metrics

    async def observe(
        self, event: StripeEvent, route: mapping.EventRoute, sub_id: str, now: float
    ) -> Observed | None:
        """The state `event` leads to; `now` is the time the re-read starts."""
        if self.config.reread_subscription and self.stripe_api is not None:
            try:
                # `timeout`, not `wait_for`: no Task (and no extra loop turn) per re-read.
                with self.metrics.stripe_read.time():
                    async with asyncio.timeout(self.config.stripe_timeout):
                        sub = await self.stripe_api.retrieve_subscription(sub_id)
            except (BridgeError, TimeoutError) as exc:
                log.warning(
                    "re-reading %s failed (%s); using the event's own object",
                    sub_id,
                    exc or type(exc).__name__,
                )
            else:
                if sub is not None and isinstance(sub.get("status"), str):
                    return Observed(str(sub["status"]), now, False, sub)
                log.warning("stripe does not know subscription %s; using the event", sub_id)
        status = mapping.event_status(route, event.object)
        if status is None:
            return None
        sub_obj = event.object if route.source is mapping.Source.SUBSCRIPTION else None
        return Observed(status, float(event.created), True, sub_obj)
