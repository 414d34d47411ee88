"""Schema-driven fuzzing of the whole HTTP API (schemathesis, from the served /openapi.json),
with the bridge wired to the real apiserver: no input may produce a 5xx.

The SSE endpoints are excluded (their responses never end); their status codes for bad input
are covered in test_status_api.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from kubernetes_asyncio import config as kconfig

from aura.bridge.app import create_app
from aura.bridge.config import BridgeConfig
from tests.bridge.conftest import SECRET, TOKEN, FakeStripe
from tests.kube import Cluster

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _serve_in_thread(kubeconfig: str, namespace: str) -> Iterator[str]:
    """The bridge on its own event loop in a thread (schemathesis calls are synchronous)."""
    ready: Future[str] = Future()
    holder: dict[str, Any] = {}

    async def main() -> None:
        api = await kconfig.new_client_from_config(config_file=kubeconfig)
        config = BridgeConfig(
            webhook_secrets=(SECRET,), api_tokens=frozenset({TOKEN}), default_namespace=namespace
        )
        app = create_app(config, api, FakeStripe())
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
        )
        holder["server"] = server
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.01)
        ready.set_result(f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}")
        await task
        await api.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    yield ready.result(timeout=30)
    holder["server"].should_exit = True
    thread.join(timeout=30)


def fuzz_operation(operation: Any, label: str, checked: dict[str, int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        for headers in (AUTH, {}):
            response = case.call(headers=headers)
            assert response.status_code < 500, (label, response.text[:200])
            checked[label] = checked.get(label, 0) + 1

    fuzz()


def test_no_input_makes_a_5xx(cluster: Cluster) -> None:
    namespace = "fuzz"
    cluster.kubectl("create", "namespace", namespace, check=False)
    checked: dict[str, int] = {}
    for url in _serve_in_thread(cluster.kubeconfig, namespace):
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema.config.base_url = url
        for result in schema.exclude(path_regex=r"/events$").get_all_operations():
            operation = result.ok()
            fuzz_operation(operation, f"{operation.method.upper()} {operation.path}", checked)
    # Every operation of the schema was exercised, authenticated and not.
    assert set(checked) >= {
        "POST /v1/stripe/webhook",
        "GET /v1/agents",
        "GET /v1/agents/{namespace}/{name}",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    }, checked
    assert min(checked.values()) >= 2
