"""Small helpers shared by the Hetzner conformance tests."""

from __future__ import annotations

from typing import Any

import hcloud
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, CreateServerResponse

USER_DATA = "#cloud-config\nruncmd:\n  - echo hello\n"


def create(
    client: hcloud.Client, name: str, *, wait: bool = True, **kwargs: Any
) -> CreateServerResponse:
    kwargs.setdefault("server_type", ServerType(name="cx22"))
    kwargs.setdefault("image", Image(name="ubuntu-24.04"))
    kwargs.setdefault("location", Location(name="fsn1"))
    response = client.servers.create(name=name, **kwargs)
    if wait:
        response.action.wait_until_finished()
        for action in response.next_actions:
            action.wait_until_finished()
    return response


def running(client: hcloud.Client, name: str, **kwargs: Any) -> BoundServer:
    server = create(client, name, **kwargs).server
    server.reload()
    assert server.status == "running"
    return server
