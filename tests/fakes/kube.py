"""Fake Secrets, Events, hosts and configurator for reconcile unit tests."""

from __future__ import annotations

from aura.configure.base import ConfigResult, ConfigTarget
from aura.controller.clients.kube import AgentRef


class FakeSecrets:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, str]] = {}
        self.owners: dict[tuple[str, str], str] = {}

    async def get(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.data.get((namespace, name))
        return dict(found) if found is not None else None

    async def create(
        self, owner: AgentRef, name: str, data: dict[str, str], labels: dict[str, str]
    ) -> bool:
        if (owner.namespace, name) in self.data:
            return False
        self.data[(owner.namespace, name)] = dict(data)
        self.owners[(owner.namespace, name)] = owner.uid
        return True

    async def delete(self, namespace: str, name: str) -> None:
        self.data.pop((namespace, name), None)


class FakeEvents:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    async def post(
        self, agent: AgentRef, type_: str, reason: str, message: str, *, kind: str = "Agent"
    ) -> None:
        self.posted.append((type_, reason, message))


class FakeHosts:
    """Cloud-init is done and the gateway is ready unless a test says otherwise."""

    def __init__(self) -> None:
        self.cloud_init_done_for: set[int] | None = None  # None: every server

    async def cloud_init_done(self, server_id: int, host: str | None) -> bool:
        return self.cloud_init_done_for is None or server_id in self.cloud_init_done_for

    async def gateway_url(self, server_id: int, tailnet_ipv4: str | None, port: int) -> str | None:
        return f"http://gateway.test/{server_id}"


class FakeConfigurator:
    def __init__(self) -> None:
        self.targets: list[ConfigTarget] = []
        self.results: list[ConfigResult] = []

    async def configure(self, target: ConfigTarget) -> ConfigResult:
        self.targets.append(target)
        return self.results.pop(0) if self.results else ConfigResult(ok=True, changed=1)
