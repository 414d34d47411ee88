"""Addresses and MagicDNS names of tailnet devices, allocated as Tailscale allocates them.

IPv4 addresses are random free ones in the CGNAT range 100.64.0.0/10, minus what Tailscale never
hands out; the IPv6 address is `fd7a:115c:a1e0::` plus the same 32 bits. A device's MagicDNS name
is its hostname's DNS label under the tailnet's suffix, with `-1`, `-2`, ... appended while another
device (even an offline ephemeral one) holds the label.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Collection

_IPV4_POOL = ipaddress.IPv4Network("100.64.0.0/10")
_IPV4_RESERVED = (
    ipaddress.IPv4Network("100.100.0.0/24"),  # quad-100 services (100.100.100.100 is DNS)
    ipaddress.IPv4Network("100.100.100.0/24"),
    ipaddress.IPv4Network("100.115.92.0/23"),  # ChromeOS; Tailscale never hands these out
)
_IPV6_BASE = int(ipaddress.IPv6Address("fd7a:115c:a1e0::"))


def dns_suffix(tailnet: str) -> str:
    """The MagicDNS suffix: the tailnet's own `*.ts.net` name, else `tail<hex>.ts.net`."""
    digest = hashlib.sha256(tailnet.encode()).hexdigest()
    return tailnet if tailnet.endswith(".ts.net") else f"tail{digest[:4]}.ts.net"


def dns_label(hostname: str) -> str:
    """The MagicDNS label Tailscale derives from a hostname (lower case, [a-z0-9-])."""
    label = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in hostname)
    return label.lower().strip("-")[:63] or "localhost"


def free_label(label: str, taken: Collection[str]) -> str:
    """`label`, or `label-N` with the smallest N not in `taken`."""
    if label not in taken:
        return label
    n = 1
    while f"{label}-{n}" in taken:
        n += 1
    return f"{label}-{n}"


def free_ipv4(used: Collection[str]) -> ipaddress.IPv4Address:
    """A random assignable address of the pool that is not in `used`."""
    while True:
        candidate = _IPV4_POOL[secrets.randbelow(_IPV4_POOL.num_addresses - 2) + 1]
        if candidate.packed[3] in (0, 255) or str(candidate) in used:
            continue
        if not any(candidate in net for net in _IPV4_RESERVED):
            return candidate


def ipv6_for(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    """The device's IPv6 address that goes with its IPv4 one."""
    return ipaddress.IPv6Address(_IPV6_BASE + int(v4))
