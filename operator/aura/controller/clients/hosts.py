"""How the operator observes an agent host: cloud-init progress and the gateway's address.

In production there is no API for either: cloud-init is done enough to start configuring once
sshd answers (the playbook then runs `cloud-init status --wait`), and the gateway is reached
over the tailnet at `http://<tailnet IPv4>:<port>`. Against a simulated world the operator uses
`sandbox_world.SandboxHosts` instead (chosen once, at start-up).
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class HostObserver(Protocol):
    async def cloud_init_done(self, server_id: int, host: str | None) -> bool: ...

    async def gateway_url(
        self, server_id: int, tailnet_ipv4: str | None, port: int
    ) -> str | None: ...


class DirectHosts:
    """Production: probe sshd on the public address; the gateway over the tailnet."""

    def __init__(self, ssh_port: int = 22, connect_timeout: float = 3.0) -> None:
        self._ssh_port = ssh_port
        self._timeout = connect_timeout

    async def cloud_init_done(self, server_id: int, host: str | None) -> bool:
        if not host:
            return False
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, self._ssh_port), self._timeout
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def gateway_url(self, server_id: int, tailnet_ipv4: str | None, port: int) -> str | None:
        return f"http://{tailnet_ipv4}:{port}" if tailnet_ipv4 else None
