"""`BridgeConfig`: everything `aura bridge` needs, built from flags and the environment.

Environment (flags override where both exist):

- `STRIPE_WEBHOOK_SECRET`  one or more signing secrets, comma-separated (secret rotation).
- `STRIPE_API_KEY`         key for re-reading subscriptions; without it the bridge trusts the
                           event's own object (still guarded by the ordering check).
- `STRIPE_API_BASE`        base URL of the Stripe API, e.g. the sandbox's `stripe_url`.
- `AURA_API_TOKENS`        bearer tokens of the status API, comma-separated; or
                           `AURA_API_TOKENS_FILE`, a file (a mounted Secret) with one per line.
- `AURA_TOKEN_KEYS`        `kid:secret` keys signing scoped tokens, comma-separated, the first
                           mints (`tokens`); or `AURA_TOKEN_KEYS_FILE`, one per line.
- `AURA_BRIDGE_PLANS`      a YAML/JSON file, or inline JSON, mapping price ids to plans.
- `AURA_BRIDGE_NAMESPACE`  namespace for new Agents when the checkout names none.
- `AURA_BRIDGE_PAST_DUE_GRACE`  seconds an Agent keeps running while `past_due` (default 0).
- `AURA_BRIDGE_HIBERNATE_AFTER`  how long an unpaid Agent stays suspended before it is
                           hibernated (`dunning`; default 3d, `never` to keep it suspended).
- `AURA_BRIDGE_SWEEP_INTERVAL`  seconds between dunning sweeps (default 30).
- `AURA_STRIPE_LIVEMODE`   `true`/`false`; default: true only for an `sk_live_` key.

Limits against hostile or buggy clients (`limits.Limits`) are flags only; see `aura bridge --help`.

`BridgeConfig.__repr__` hides every secret, so logging a config is safe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aura.bridge.dunning import DEFAULT_HIBERNATE_AFTER, parse_duration
from aura.bridge.limits import Limits
from aura.bridge.tokens import parse_keys
from aura.models import RuntimeSpec, ServerSpec

DEFAULT_TOLERANCE = 300
"""Seconds a signature's timestamp may lie in the past: Stripe's own default, never 0."""


class Plan(BaseModel):
    """Size and runtime of the Agent a price buys; the sections of `spec` it fills in."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    server: Annotated[ServerSpec, Field(default_factory=ServerSpec)]
    runtime: Annotated[RuntimeSpec, Field(default_factory=RuntimeSpec)]

    def spec_sections(self) -> dict[str, Any]:
        """`{"server": ..., "runtime": ...}` in wire form, ready to merge into `spec`."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class PlanBook(BaseModel):
    """The plan file: `default` plus `prices: {price_id: plan}`."""

    model_config = ConfigDict(extra="forbid")

    default: Annotated[Plan, Field(default_factory=Plan)]
    prices: Annotated[dict[str, Plan], Field(default_factory=dict)]

    def for_prices(self, price_ids: list[str]) -> Plan:
        """The plan of the first known price, else the default plan."""
        for price_id in price_ids:
            if price_id in self.prices:
                return self.prices[price_id]
        return self.default


def load_plans(source: str | None) -> PlanBook:
    """A PlanBook from inline JSON (starts with `{`), a YAML/JSON file path, or nothing."""
    if not source:
        return PlanBook.model_validate({})
    text = source if source.lstrip().startswith("{") else Path(source).read_text()
    data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    return PlanBook.model_validate(data or {})


def split_list(value: str | None) -> tuple[str, ...]:
    """Comma- or newline-separated items, stripped, empties dropped."""
    if not value:
        return ()
    return tuple(item.strip() for item in value.replace("\n", ",").split(",") if item.strip())


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _duration(name: str, env: Mapping[str, str]) -> float:
    value = env.get(name)
    if not value:
        return DEFAULT_HIBERNATE_AFTER
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class BridgeConfig:
    """Settings of one bridge process; see the module docstring for the environment."""

    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    api_tokens: frozenset[str] = field(default=frozenset(), repr=False)
    token_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """Signing keys of scoped tokens, `(kid, secret)`, the first mints (`tokens`)."""
    livemode: bool = False
    default_namespace: str = "default"
    plans: PlanBook = field(default_factory=lambda: PlanBook.model_validate({}))
    past_due_grace: float = 0.0
    """Seconds an Agent stays running while its subscription is `past_due`; 0 = suspend now."""
    hibernate_after: float = DEFAULT_HIBERNATE_AFTER
    """Seconds a suspended, unpaid Agent waits before hibernation (0: never); price or product
    metadata `aura_hibernate_after` overrides it per plan (`dunning`)."""
    reread_subscription: bool = True
    """Derive the state from the subscription as Stripe has it now, not from the event."""
    stripe_timeout: float = 2.0
    """Bound on the re-read: past it, the event's own object is used instead."""
    tolerance: int = DEFAULT_TOLERANCE
    dedup_cache_size: int = 10_000
    write_deadline: float = 8.0
    """Seconds to keep retrying Kubernetes writes before answering 503 (Stripe then retries)."""
    grace_sweep_interval: float = 30.0
    limits: Limits = field(default_factory=Limits)
    """Bounds on body sizes, read deadlines, connections and streams (see `limits`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> BridgeConfig:
        """A config from `env` (default `os.environ`); keyword overrides win (the CLI flags)."""
        env = os.environ if env is None else env
        api_key = env.get("STRIPE_API_KEY") or None
        tokens = set(split_list(env.get("AURA_API_TOKENS")))
        if tokens_file := env.get("AURA_API_TOKENS_FILE"):
            tokens.update(split_list(Path(tokens_file).read_text()))
        livemode_env = env.get("AURA_STRIPE_LIVEMODE")
        keys_text = env.get("AURA_TOKEN_KEYS") or ""
        if keys_file := env.get("AURA_TOKEN_KEYS_FILE"):
            keys_text += "\n" + Path(keys_file).read_text()
        values: dict[str, Any] = {
            "webhook_secrets": split_list(env.get("STRIPE_WEBHOOK_SECRET")),
            "stripe_api_key": api_key,
            "stripe_api_base": env.get("STRIPE_API_BASE") or None,
            "api_tokens": frozenset(tokens),
            "token_keys": parse_keys(keys_text),
            "livemode": _truthy(livemode_env)
            if livemode_env
            else bool(api_key and api_key.startswith("sk_live_")),
            "default_namespace": env.get("AURA_BRIDGE_NAMESPACE") or "default",
            "plans": load_plans(env.get("AURA_BRIDGE_PLANS")),
            "past_due_grace": float(env.get("AURA_BRIDGE_PAST_DUE_GRACE") or 0),
            "hibernate_after": _duration("AURA_BRIDGE_HIBERNATE_AFTER", env),
            "grace_sweep_interval": float(env.get("AURA_BRIDGE_SWEEP_INTERVAL") or 30),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
