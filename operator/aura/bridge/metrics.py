"""Prometheus metrics of one bridge app, on a registry of its own (several apps may live in one
test process). Served at `/metrics`.

- `aura_bridge_webhook_events_total{type,outcome}`: every delivery; `type` is `unverified` for
  deliveries rejected before the signature matched, so forged traffic cannot grow the label set.
- `aura_bridge_webhook_duration_seconds`: wall time of a webhook request, verification to answer.
- `aura_bridge_stripe_read_seconds`, `aura_bridge_kube_write_seconds`: the two remote calls on
  the webhook's critical path (subscription re-read, Agent create/patch), failures included.
- `aura_bridge_sse_clients`: open Server-Sent Events streams.
- `aura_bridge_webhook_rejected_total{reason}`: deliveries refused as not genuine (bad or missing
  signature, malformed event); `reason` is one of `signature.InvalidWebhook`'s fixed reasons.
- `aura_bridge_http_refused_total{reason}`: requests refused by a limit (`limits`, `protocol`):
  `body_too_large`, `busy`, `too_many_connections`, `header_timeout`, `body_timeout`,
  `headers_too_large`, `too_many_streams`. Refusals are counted here, never logged one by one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "aura_bridge_webhook_events",
            "Stripe webhook deliveries by event type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aura_bridge_webhook_duration_seconds",
            "Time to answer a Stripe webhook delivery.",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.stripe_read = Histogram(
            "aura_bridge_stripe_read_seconds",
            "Time to re-read a subscription from Stripe.",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.kube_write = Histogram(
            "aura_bridge_kube_write_seconds",
            "Time of one Agent create or patch on the Kubernetes API.",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "aura_bridge_webhook_rejected",
            "Webhook deliveries refused as not genuine, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.refused = Counter(
            "aura_bridge_http_refused",
            "Requests refused by a limit on size, time or concurrency, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "aura_bridge_sse_clients", "Open Server-Sent Events streams.", registry=self.registry
        )

    def refuse(self, reason: str) -> None:
        """Count one request refused by a limit."""
        self.refused.labels(reason).inc()
