"""The read-only Hetzner catalog: locations, datacenters, server types and system images.

Figures are Hetzner's public list prices (EUR, net; gross adds 19 % German VAT) and ids close to
the real ones, so that an operator resolving `cx22` in `fsn1` sees what production shows.
Everything here is plain data rendered straight into API responses.
"""

from __future__ import annotations

from typing import Any

VAT = 1.19
TB = 1024**4

LOCATIONS: list[dict[str, Any]] = [
    {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE",
     "city": "Falkenstein", "latitude": 50.47612, "longitude": 12.370071,
     "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE",
     "city": "Nuremberg", "latitude": 49.452102, "longitude": 11.076665,
     "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI",
     "city": "Helsinki", "latitude": 60.169855, "longitude": 24.938379,
     "network_zone": "eu-central"},
    {"id": 4, "name": "ash", "description": "Ashburn, VA", "country": "US",
     "city": "Ashburn, VA", "latitude": 39.045821, "longitude": -77.487073,
     "network_zone": "us-east"},
    {"id": 5, "name": "hil", "description": "Hillsboro, OR", "country": "US",
     "city": "Hillsboro, OR", "latitude": 45.54222, "longitude": -122.951924,
     "network_zone": "us-west"},
    {"id": 6, "name": "sin", "description": "Singapore", "country": "SG",
     "city": "Singapore", "latitude": 1.283333, "longitude": 103.833333,
     "network_zone": "ap-southeast"},
]  # fmt: skip
LOCATION_BY_NAME = {loc["name"]: loc for loc in LOCATIONS}
LOCATION_BY_ID = {loc["id"]: loc for loc in LOCATIONS}

_DC_NAMES = {"fsn1": (4, "fsn1-dc14"), "nbg1": (2, "nbg1-dc3"), "hel1": (3, "hel1-dc2"),
             "ash": (5, "ash-dc1"), "hil": (6, "hil-dc1"), "sin": (7, "sin-dc1")}  # fmt: skip
EU = ("fsn1", "nbg1", "hel1")
EVERYWHERE = (*EU, "ash", "hil", "sin")
_TRAFFIC_TB = {"fsn1": 20, "nbg1": 20, "hel1": 20, "ash": 1, "hil": 1, "sin": 1}
_TRAFFIC_PRICE = {"fsn1": 1.0, "nbg1": 1.0, "hel1": 1.0, "ash": 1.0, "hil": 1.0, "sin": 7.4}

# name: (id, description, cores, memory GB, disk GB, cpu_type, architecture, category,
#        monthly EUR net in the EU, monthly EUR net elsewhere, locations)
_TypeRow = tuple[str, int, str, int, float, int, str, str, str, float, float, tuple[str, ...]]
_TYPES: list[_TypeRow] = [
    ("cx22", 104, "CX22", 2, 4, 40, "shared", "x86", "Shared vCPU", 3.79, 3.79, EU),
    ("cx32", 105, "CX32", 4, 8, 80, "shared", "x86", "Shared vCPU", 6.80, 6.80, EU),
    ("cx42", 106, "CX42", 8, 16, 160, "shared", "x86", "Shared vCPU", 16.40, 16.40, EU),
    ("cx52", 107, "CX52", 16, 32, 320, "shared", "x86", "Shared vCPU", 32.40, 32.40, EU),
    ("cpx11", 22, "CPX 11", 2, 2, 40, "shared", "x86", "Shared vCPU", 4.35, 5.49, EVERYWHERE),
    ("cpx21", 23, "CPX 21", 3, 4, 80, "shared", "x86", "Shared vCPU", 7.55, 9.49, EVERYWHERE),
    ("cpx31", 24, "CPX 31", 4, 8, 160, "shared", "x86", "Shared vCPU", 13.60, 16.49, EVERYWHERE),
    ("cax11", 45, "CAX11", 2, 4, 40, "shared", "arm", "Shared vCPU", 3.79, 3.79, EU),
    ("cax21", 93, "CAX21", 4, 8, 80, "shared", "arm", "Shared vCPU", 6.49, 6.49, EU),
    ("ccx13", 96, "CCX13", 2, 8, 80, "dedicated", "x86", "Dedicated vCPU", 12.49, 14.49,
     EVERYWHERE),
    ("ccx23", 97, "CCX23", 4, 16, 160, "dedicated", "x86", "Dedicated vCPU", 24.49, 28.49,
     EVERYWHERE),
]  # fmt: skip


def _money(value: float) -> dict[str, str]:
    return {"net": f"{value:.10f}", "gross": f"{value * VAT:.10f}"}


def _server_type(row: tuple[Any, ...]) -> dict[str, Any]:
    name, tid, desc, cores, mem, disk, cpu, arch, category, eu, other, locs = row
    prices = []
    for loc in locs:
        monthly = eu if loc in EU else other
        prices.append(
            {
                "location": loc,
                # Hetzner bills per hour, capped at the monthly price; hourly is monthly / ~630 h.
                "price_hourly": _money(round(monthly / 632.0, 4)),
                "price_monthly": _money(monthly),
                "included_traffic": _TRAFFIC_TB[loc] * TB,
                "price_per_tb_traffic": _money(_TRAFFIC_PRICE[loc]),
            }
        )
    return {
        "id": tid,
        "name": name,
        "description": desc,
        "cores": cores,
        "memory": mem,
        "disk": disk,
        "deprecated": False,
        "prices": prices,
        "storage_type": "local",
        "cpu_type": cpu,
        "category": category,
        "architecture": arch,
        "deprecation": None,
        "locations": [
            {
                "id": LOCATION_BY_NAME[loc]["id"],
                "name": loc,
                "deprecation": None,
                "recommended": loc == locs[0],
                "available": True,
            }
            for loc in locs
        ],
        "included_traffic": _TRAFFIC_TB[locs[0]] * TB,
    }


SERVER_TYPES: list[dict[str, Any]] = [_server_type(row) for row in _TYPES]
SERVER_TYPE_BY_NAME = {st["name"]: st for st in SERVER_TYPES}
SERVER_TYPE_BY_ID = {st["id"]: st for st in SERVER_TYPES}


def _offered(server_type: dict[str, Any], location: str) -> bool:
    return any(p["location"] == location for p in server_type["prices"])


def _datacenter(loc: dict[str, Any]) -> dict[str, Any]:
    dc_id, dc_name = _DC_NAMES[loc["name"]]
    ids = [st["id"] for st in SERVER_TYPES if _offered(st, loc["name"])]
    return {
        "id": dc_id,
        "name": dc_name,
        "description": f"{loc['city']} virtual DC 1",
        "location": loc,
        "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
    }


DATACENTERS: list[dict[str, Any]] = [_datacenter(loc) for loc in LOCATIONS]
DATACENTER_BY_LOCATION = {dc["location"]["name"]: dc for dc in DATACENTERS}
DATACENTER_BY_ID = {dc["id"]: dc for dc in DATACENTERS}
DATACENTER_BY_NAME = {dc["name"]: dc for dc in DATACENTERS}

# (id, name, description, os_flavor, os_version, architecture, disk GB)
_IMAGES = [
    (161547269, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04", "x86", 5),
    (103908070, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04", "arm", 5),
    (67794396, "ubuntu-22.04", "Ubuntu 22.04", "ubuntu", "22.04", "x86", 5),
    (103907373, "ubuntu-22.04", "Ubuntu 22.04", "ubuntu", "22.04", "arm", 5),
    (114690387, "debian-12", "Debian 12", "debian", "12", "x86", 5),
    (114690389, "debian-12", "Debian 12", "debian", "12", "arm", 5),
]

SYSTEM_IMAGES: list[dict[str, Any]] = [
    {
        "id": iid,
        "type": "system",
        "status": "available",
        "name": name,
        "description": desc,
        "image_size": None,
        "disk_size": disk,
        "created": "2024-04-25T14:26:27Z",
        "created_from": None,
        "bound_to": None,
        "os_flavor": flavor,
        "os_version": version,
        "rapid_deploy": True,
        "protection": {"delete": False},
        "deprecated": None,
        "deprecation": None,
        "deleted": None,
        "labels": {},
        "architecture": arch,
    }
    for iid, name, desc, flavor, version, arch, disk in _IMAGES
]


# Pre-encoded JSON of the static parts every server embeds (server type ~1.5 kB, datacenter,
# location). `fast_json.dumps` splices them in, so a list of 50 servers does not re-encode the
# same price tables 50 times; this is most of the sandbox's per-request CPU.
def _fragments() -> dict[str, str]:
    import json

    out: dict[str, str] = {}
    for st in SERVER_TYPES:
        out[f"server_type:{st['name']}"] = json.dumps(st, separators=(",", ":"))
    for dc in DATACENTERS:
        out[f"datacenter:{dc['location']['name']}"] = json.dumps(dc, separators=(",", ":"))
    for loc in LOCATIONS:
        out[f"location:{loc['name']}"] = json.dumps(loc, separators=(",", ":"))
    return out


FRAGMENTS = _fragments()
