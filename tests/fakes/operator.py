"""An `Operator` wired to the fakes of every external API, for unit tests of jobs and steps."""

from __future__ import annotations

import httpx

from aura.controller import naming
from aura.controller.clients.servercache import ServerCache
from aura.controller.runtime import Operator
from aura.controller.settings import OperatorConfig
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.kube import FakeConfigurator, FakeEvents, FakeHosts, FakeSecrets
from tests.fakes.tailnet import FakeTailnet


def fake_operator(config: OperatorConfig, hetzner: FakeHetzner, tailnet: FakeTailnet) -> Operator:
    """`config` over `hetzner` and `tailnet`; a server list that is never reused (max_age 0)."""
    return Operator(
        config=config,
        hetzner=hetzner,
        servers=ServerCache(hetzner, label_selector=naming.MANAGED_SELECTOR, max_age=0),
        tailnet=tailnet,
        secrets=FakeSecrets(),
        events=FakeEvents(),
        hosts=FakeHosts(),
        configurator=FakeConfigurator(),
        http=httpx.AsyncClient(),
    )
