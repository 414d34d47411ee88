"""The admin API and the simulated agent gateways."""

from __future__ import annotations

import hcloud
import pytest
import requests

from aura_sandbox.harness import Sandbox
from tests.polling import wait_for
from tests.sandbox.hetzner_support import create, running


def _admin(sandbox: Sandbox, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, sandbox.ready.admin_url + path, timeout=5, **kwargs)  # type: ignore[arg-type]


def _gateway_answers(url: str) -> bool:
    try:
        response = requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    assert response.status_code == 200
    return True


def test_world_and_servers(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = running(client, "seen", labels={"a": "b"}, user_data="#cloud-config\n")
    summary = _admin(sandbox, "GET", "/world").json()
    assert summary["servers"] == 1
    assert summary["servers_by_status"] == {"running": 1}
    servers = _admin(sandbox, "GET", "/servers").json()["servers"]
    assert [s["name"] for s in servers] == ["seen"]
    view = _admin(sandbox, "GET", f"/servers/{server.id}").json()
    assert view["user_data"] == "#cloud-config\n"
    assert view["cloud_init"] in ("running", "done")
    assert view["gateway_url"] == f"{sandbox.ready.base_url}/_gateway/{server.id}"
    assert _admin(sandbox, "GET", "/servers/1").status_code == 404


def test_configure_and_gateway(client: hcloud.Client, sandbox: Sandbox) -> None:
    response = create(client, "agent", wait=False)
    server = response.server
    gateway = sandbox.server(server.id)["gateway_url"]
    configure = _admin(
        sandbox, "POST", f"/servers/{server.id}/configure", json={"openclaw_version": "2026.2.26"}
    )
    assert configure.status_code == 409  # not running yet
    response.next_actions[0].wait_until_finished()
    assert not _gateway_answers(gateway + "/readyz")  # running, but nothing listens yet
    assert _admin(sandbox, "POST", f"/servers/{server.id}/configure", json={}).status_code == 422
    configure = _admin(
        sandbox,
        "POST",
        f"/servers/{server.id}/configure",
        json={"openclaw_version": "2026.2.26", "wait": True},
    )
    assert configure.json()["configured"] is True
    assert configure.json()["mode"] == "full_install"
    ready = requests.get(gateway + "/readyz", timeout=2).json()
    assert ready["ready"] is True and ready["version"] == "2026.2.26"
    assert requests.get(gateway + "/healthz", timeout=2).json()["ok"] is True

    server.power_off().wait_until_finished()
    assert not _gateway_answers(gateway + "/healthz")
    server.power_on().wait_until_finished()
    assert _gateway_answers(gateway + "/readyz")  # configuration is on disk: survives a reboot
    server.delete()
    assert not _gateway_answers(gateway + "/readyz")


def test_request_counts(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = create(client, "counted", wait=False).server
    client.servers.get_by_id(server.id)
    client.servers.get_by_id(server.id)
    counts = _admin(sandbox, "GET", "/requests").json()["requests"]
    assert counts["GET /v1/servers/{id}"] == 2
    assert counts["POST /v1/servers"] == 1
    assert not any(k.startswith("GET /admin") for k in counts)
    assert _admin(sandbox, "DELETE", "/requests").status_code == 204
    assert _admin(sandbox, "GET", "/requests").json()["requests"] == {}


def test_faults_over_http(client: hcloud.Client, sandbox: Sandbox) -> None:
    added = _admin(
        sandbox, "POST", "/faults", json={"kind": "http_error", "status": 500, "count": 2}
    )
    assert added.status_code == 201 and added.json()["count"] == 2
    assert [f["kind"] for f in _admin(sandbox, "GET", "/faults").json()["faults"]] == ["http_error"]
    with pytest.raises(hcloud.APIException):
        client.locations.get_all()
    assert _admin(sandbox, "GET", "/faults").json()["faults"][0]["count"] == 1
    assert _admin(sandbox, "DELETE", "/faults").status_code == 204
    client.locations.get_all()
    bad = _admin(sandbox, "POST", "/faults", json={"kind": "meteor"})
    assert bad.status_code == 422
    assert _admin(sandbox, "POST", "/faults", json=[1]).status_code == 422


def test_rate_limit_can_be_reconfigured(client: hcloud.Client, sandbox: Sandbox) -> None:
    _admin(sandbox, "POST", "/rate_limit", json={"capacity": 1, "refill_per_second": 0.01})
    client.locations.get_all()
    response = requests.get(
        sandbox.ready.hetzner_url + "/locations",
        headers={"Authorization": f"Bearer {sandbox.ready.hetzner_token}"},
        timeout=5,
    )
    assert response.status_code == 429


def test_cloud_init_finishes(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = running(client, "ci")
    wait_for(lambda: sandbox.server(server.id)["cloud_init"] == "done")


def test_creation_time_can_be_moved_for_billing_tests(
    client: hcloud.Client, sandbox: Sandbox
) -> None:
    server = create(client, "aged").server
    when = "2026-11-20T08:30:00+00:00"
    moved = _admin(sandbox, "PUT", f"/servers/{server.id}/created", json={"created": when})
    assert moved.status_code == 200, moved.text
    # The official client sees the new time (what Hetzner bills from).
    assert client.servers.get_by_id(server.id).created.isoformat() == when
    naive = _admin(sandbox, "PUT", f"/servers/{server.id}/created", json={"created": "2026-11-20"})
    assert naive.status_code == 422 and "offset" in naive.json()["error"]
    missing = _admin(sandbox, "PUT", f"/servers/{server.id}/created", json={})
    assert missing.status_code == 422
