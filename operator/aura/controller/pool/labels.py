"""Annotations and labels of warm pools.

A pool member is an ordinary Agent owned by its AgentPool (ownerReference) and annotated
`POOL`. The hand-over to a customer's Agent is recorded in two places, in this order:

1. `CLAIMED_BY` (the customer Agent's UID) on the member, written with a compare-and-swap on
   its resourceVersion: two Agents can never both claim one member, and a claimed member is
   never offered again;
2. the server's labels: relabelling it to the customer Agent (plus `POOL_SERVED` and
   `POOL_DEVICE`) is the commit point. From then on the server is found by the customer's
   UID like any server of its own, and the member's finalizer leaves server and device alone.
"""

from __future__ import annotations

POOL = "aura.dev/pool"
"""On a member Agent: the name of its AgentPool."""
CLAIMED_BY = "aura.dev/claimed-by"
"""On a member Agent: the UID of the Agent taking its server over."""
POOL_SERVED = "aura.dev/pool-served"
"""On a server handed over: the pool it came from (never returned to it)."""
POOL_DEVICE = "aura.dev/pool-device"
"""On a server handed over: its tailnet device ID, so a pass killed after the commit point
still records the device the customer's Agent now owns."""
