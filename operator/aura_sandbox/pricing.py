"""Prices: the table behind `GET /v1/pricing`, the per-location `prices` of server types, and
the admin API that sets them (`GET/PUT/DELETE /admin/pricing`; routes in `hetzner_pricing`).

One `PriceTable` per world (persisted with the Hetzner state) feeds both Hetzner shapes, so a
test that changes a price sees it in `/pricing`, in `/server_types` and in every server's
embedded `server_type`. Defaults are Hetzner's public list prices (EUR, net; `catalog` for the
servers); hourly prices are monthly / 632 h rounded to 4 places, which reproduces Hetzner's
published hourly figures (e.g. CX22: 3.79 / month, 0.0060 / hour).

`PUT /admin/pricing` takes any subset of::

    {"currency": "EUR", "vat_rate": 19.0,
     "image_per_gb_month": 0.011, "volume_per_gb_month": 0.044,
     "primary_ipv4_monthly": 0.5, "primary_ipv6_monthly": 0.0,
     "floating_ipv4_monthly": 3.0, "floating_ipv6_monthly": 1.0, "server_backup_percentage": 20,
     "server_types": {"cx22": {"fsn1": {"monthly": 3.79, "hourly": 0.006}}},
     "traffic": {"fsn1": {"included_tb": 20, "per_tb": 1.0}}}

and answers the whole table; `DELETE` restores the defaults. A malformed body is `422` naming
the field.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aura_sandbox import catalog
from aura_sandbox.catalog import FRAGMENTS, TB

HOURS_PER_MONTH = 632.0
_SCALARS = (
    "vat_rate",
    "image_per_gb_month",
    "volume_per_gb_month",
    "primary_ipv4_monthly",
    "primary_ipv6_monthly",
    "floating_ipv4_monthly",
    "floating_ipv6_monthly",
    "server_backup_percentage",
)


def _default_servers() -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for st in catalog.SERVER_TYPES:
        out[st["name"]] = {
            p["location"]: {
                "monthly": float(p["price_monthly"]["net"]),
                "hourly": float(p["price_hourly"]["net"]),
            }
            for p in st["prices"]
        }
    return out


def _default_traffic() -> dict[str, dict[str, float]]:
    prices = {p["location"]: p for st in catalog.SERVER_TYPES for p in st["prices"]}
    return {
        loc: {
            "included_tb": p["included_traffic"] / TB,
            "per_tb": float(p["price_per_tb_traffic"]["net"]),
        }
        for loc, p in prices.items()
    }


@dataclass
class PriceTable:
    """The prices the simulated Hetzner quotes; see the module docstring."""

    currency: str = "EUR"
    vat_rate: float = 19.0
    image_per_gb_month: float = 0.011
    """Snapshots and backups per GB of `image_size` and month (Hetzner: 0.0110 EUR net)."""
    volume_per_gb_month: float = 0.044
    primary_ipv4_monthly: float = 0.5
    primary_ipv6_monthly: float = 0.0
    floating_ipv4_monthly: float = 3.0
    floating_ipv6_monthly: float = 1.0
    server_backup_percentage: float = 20.0
    servers: dict[str, dict[str, dict[str, float]]] = field(default_factory=_default_servers)
    traffic: dict[str, dict[str, float]] = field(default_factory=_default_traffic)

    def __post_init__(self) -> None:
        self._fragment_keys: dict[str, str] = {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_dict(self, d: dict[str, Any]) -> None:
        fresh = PriceTable()
        for f in fields(self):
            setattr(self, f.name, d.get(f.name, getattr(fresh, f.name)))
        self._fragment_keys.clear()

    # Hetzner shapes -------------------------------------------------------------------

    def money(self, net: float, places: int = 10) -> dict[str, str]:
        gross = net * (1 + self.vat_rate / 100)
        return {"net": f"{net:.{places}f}", "gross": f"{gross:.{places}f}"}

    def included_traffic(self, location: str) -> int:
        return int(self.traffic[location]["included_tb"] * TB)

    def server_type_prices(self, name: str) -> list[dict[str, Any]]:
        return [
            {
                "location": loc,
                "price_hourly": self.money(p["hourly"]),
                "price_monthly": self.money(p["monthly"]),
                "included_traffic": self.included_traffic(loc),
                "price_per_tb_traffic": self.money(self.traffic[loc]["per_tb"]),
            }
            for loc, p in self.servers[name].items()
        ]

    def server_type(self, name: str) -> dict[str, Any]:
        st = copy.copy(catalog.SERVER_TYPE_BY_NAME[name])
        st["prices"] = self.server_type_prices(name)
        st["included_traffic"] = st["prices"][0]["included_traffic"]
        return st

    def server_type_fragment(self, name: str) -> str:
        """A `fast_json` fragment key for the server type at these prices (encoded once per
        distinct content, so the default table costs nothing per request)."""
        key = self._fragment_keys.get(name)
        if key is None:
            encoded = json.dumps(self.server_type(name), separators=(",", ":"))
            digest = hashlib.sha256(encoded.encode()).hexdigest()[:16]
            key = self._fragment_keys[name] = f"server_type:{name}:{digest}"
            FRAGMENTS.setdefault(key, encoded)
        return key

    def render(self) -> dict[str, Any]:
        """The `pricing` object of `GET /v1/pricing`."""
        locations = list(self.traffic)
        ip_prices = {
            "ipv4": (self.primary_ipv4_monthly, self.floating_ipv4_monthly),
            "ipv6": (self.primary_ipv6_monthly, self.floating_ipv6_monthly),
        }
        return {
            "currency": self.currency,
            "vat_rate": f"{self.vat_rate:.2f}",
            "image": {"price_per_gb_month": self.money(self.image_per_gb_month)},
            "volume": {"price_per_gb_month": self.money(self.volume_per_gb_month)},
            "server_backup": {"percentage": f"{self.server_backup_percentage:.2f}"},
            "floating_ip": {"price_monthly": self.money(self.floating_ipv4_monthly)},
            "floating_ips": [
                {
                    "type": ip,
                    "prices": [
                        {"location": loc, "price_monthly": self.money(floating)}
                        for loc in locations
                    ],
                }
                for ip, (_, floating) in ip_prices.items()
            ],
            "primary_ips": [
                {
                    "type": ip,
                    "prices": [
                        {
                            "location": loc,
                            "price_hourly": self.money(primary / HOURS_PER_MONTH),
                            "price_monthly": self.money(primary),
                        }
                        for loc in locations
                    ],
                }
                for ip, (primary, _) in ip_prices.items()
            ],
            "server_types": [
                {"id": st["id"], "name": st["name"], "prices": self.server_type_prices(st["name"])}
                for st in catalog.SERVER_TYPES
            ],
            "load_balancer_types": [],
        }

    # Admin updates --------------------------------------------------------------------

    def update(self, body: dict[str, Any]) -> None:
        """Apply a partial update; raises `ValueError` naming the bad field (nothing applied)."""
        staged = copy.deepcopy(self)
        if "currency" in body:
            if not isinstance(body["currency"], str) or len(body["currency"]) != 3:
                raise ValueError("currency: an ISO 4217 code such as EUR")
            staged.currency = body["currency"]
        for name in _SCALARS:
            if name in body:
                setattr(staged, name, _amount(body[name], name))
        for st_name, per_loc in _mapping(body.get("server_types", {}), "server_types").items():
            known = staged.servers.get(st_name)
            if known is None:
                raise ValueError(f"server_types.{st_name}: unknown server type")
            for loc, prices in _mapping(per_loc, f"server_types.{st_name}").items():
                where = f"server_types.{st_name}.{loc}"
                if loc not in known:
                    raise ValueError(f"{where}: the type is not offered in this location")
                entry = dict(known[loc])
                for key, value in _mapping(prices, where).items():
                    if key not in ("monthly", "hourly"):
                        raise ValueError(f"{where}.{key}: use monthly or hourly")
                    entry[key] = _amount(value, f"{where}.{key}")
                if "monthly" in prices and "hourly" not in prices:
                    entry["hourly"] = round(entry["monthly"] / HOURS_PER_MONTH, 4)
                known[loc] = entry
        for loc, values in _mapping(body.get("traffic", {}), "traffic").items():
            if loc not in staged.traffic:
                raise ValueError(f"traffic.{loc}: unknown location")
            for key, value in _mapping(values, f"traffic.{loc}").items():
                if key not in ("included_tb", "per_tb"):
                    raise ValueError(f"traffic.{loc}.{key}: use included_tb or per_tb")
                staged.traffic[loc][key] = _amount(value, f"traffic.{loc}.{key}")
        for f in fields(self):
            setattr(self, f.name, getattr(staged, f.name))
        self._fragment_keys.clear()


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be an object")
    return value


def _amount(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}: must be a number >= 0")
    return float(value)
