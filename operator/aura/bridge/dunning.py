"""The dunning timeline's second step: how long a suspended, unpaid Agent keeps its server
before it is hibernated (checkpointed, server deleted: it stops costing money).

The grace comes from, first match wins:

1. the metadata key `aura_hibernate_after` of the subscription's first price,
2. the same key on that price's product, when Stripe sent the product expanded,
3. the bridge's `--hibernate-after` (`BridgeConfig.hibernate_after`, default 3 days).

A value is seconds (`3600`) or a number with a unit `s`, `m`, `h`, `d` (`36h`, `7d`);
`never`, `off` or `0` keep the Agent suspended (never hibernated). A malformed value is logged
with the field and the fix, and the next source is used: a typo in Stripe's dashboard must not
hibernate (or spare) a customer on a surprise rule.

Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

METADATA_KEY = "aura_hibernate_after"
DEFAULT_HIBERNATE_AFTER = 3 * 86400.0
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_NEVER = {"never", "off", "none"}


def parse_duration(value: str) -> float:
    """Seconds for `value` (see the module docstring); 0 means never. Raises ValueError."""
    text = value.strip().lower()
    if text in _NEVER:
        return 0.0
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: use seconds or a number with s/m/h/d "
            "(e.g. 72h, 7d), or 'never'"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def _metadata_value(obj: Any) -> str | None:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    value = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def _first_price(subscription: dict[str, Any]) -> dict[str, Any] | None:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    price = data[0].get("price")
    return price if isinstance(price, dict) else None


def hibernate_after(subscription: dict[str, Any] | None, default: float) -> tuple[float, str]:
    """(seconds, rule) for this subscription: the grace between suspension and hibernation
    (0 = never) and which rule set it, for the Agent's reason text."""
    price = _first_price(subscription or {}) or {}
    for where, obj in (("price", price), ("product", price.get("product"))):
        value = _metadata_value(obj)
        if value is None:
            continue
        try:
            return parse_duration(value), f"{where} metadata {METADATA_KEY}"
        except ValueError as exc:
            log.warning(
                "%s %s: metadata %s ignored: %s",
                where,
                (obj or {}).get("id", "?") if isinstance(obj, dict) else "?",
                METADATA_KEY,
                exc,
            )
    return default, "--hibernate-after"


def describe(seconds: float) -> str:
    """`259200` -> `3d`: durations in reason texts, in the unit that reads best."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:g}s"
