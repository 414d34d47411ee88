"""The bridge's public endpoint under hostile traffic, against the REAL `aura bridge` process
(uvicorn, httptools, the guarded protocol) and the real apiserver: bodies bounded before they
are read, slow clients cut off, caps answered at once, forged signatures counted but logged
sparingly, and a flood that starves no genuine delivery nor takes memory past the Pod limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from kubernetes.client.exceptions import ApiException

from aura.models import GROUP, PLURAL, VERSION
from tests.bridge.flood import (
    MEMORY_LIMIT,
    BridgeProcess,
    Flood,
    FloodPlan,
    MiB,
    SignedEvents,
    percentile,
    start_bridge,
)
from tests.kube import Cluster

pytestmark = pytest.mark.integration
WEBHOOK = "/v1/stripe/webhook"
StartBridge = Callable[..., BridgeProcess]


@pytest.fixture
def run_bridge(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[StartBridge]:
    """`run_bridge(*flags)` -> a running `aura bridge` subprocess in this test's namespace."""
    started: list[BridgeProcess] = []

    def start(*args: str) -> BridgeProcess:
        log = tmp_path / f"bridge-{len(started)}.log"
        started.append(start_bridge(cluster.kubeconfig, namespace, log, args))
        return started[-1]

    yield start
    for bridge in started:
        bridge.stop()


def connect(bridge: BridgeProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", bridge.port), timeout=10)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer; the connection must then be closed."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        sock.sendall(data)


def head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: bridge"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed(bridge: BridgeProcess, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, bridge.secret)
    return httpx.post(
        bridge.url + WEBHOOK, content=body, headers={"Stripe-Signature": header}, timeout=30
    )


def checkout_event(name: str, padding: int = 0) -> dict[str, Any]:
    # Unique ids: the bridge finds Agents by subscription across the cluster, which other
    # tests (and earlier runs against a kept cluster) share.
    unique = f"{name.replace('-', '')}{secrets.token_hex(4)}"
    obj = {
        "id": f"cs_{unique}",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": f"cus_{unique}",
        "subscription": f"sub_{unique}",
        "metadata": {"agent_name": name, "padding": "p" * padding},
    }
    return {
        "id": f"evt_{name}_{time.time_ns()}",
        "object": "event",
        "created": int(time.time()),
        "livemode": False,
        "type": "checkout.session.completed",
        "data": {"object": obj},
    }


def agent_state(cluster: Cluster, namespace: str, name: str) -> str:
    agent = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return str(agent["spec"]["desiredState"])


def test_bodies_are_bounded_before_they_are_read(
    run_bridge: StartBridge, cluster: Cluster, namespace: str
) -> None:
    bridge = run_bridge("--max-body-bytes", str(256 * 1024))
    # Declared too large: answered at once, without waiting for a byte of the body.
    sock = connect(bridge)
    started = time.monotonic()
    sock.sendall(head(WEBHOOK, Content_Length=str(20 * MiB), Stripe_Signature="t=1,v1=0"))
    status, headers, body = read_answer(sock)
    assert (status, headers["connection"]) == (413, "close")
    assert b"at most 262144 bytes" in body
    assert time.monotonic() - started < 2
    # Chunked: cut off as soon as it passes the limit, long before the 16 MiB it would send.
    sock = connect(bridge)
    sock.sendall(head(WEBHOOK, Transfer_Encoding="chunked", Stripe_Signature="t=1,v1=0"))
    chunk, sent = b"x" * 65536, 0
    try:
        for _ in range(256):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except OSError:
        pass  # the bridge hung up on us: that is the point
    assert sent < 16 * MiB
    # The reset may overtake the answer in our receive buffer; the metric below tells anyway.
    with contextlib.suppress(ConnectionResetError):
        assert read_answer(sock)[0] == 413
    assert bridge.metric("aura_bridge_http_refused_total", reason="body_too_large") == 2
    # Nothing of either reached the handler.
    assert "aura_bridge_webhook_events_total{" not in bridge.metrics()
    # A genuine event just under the limit is processed.
    response = signed(bridge, checkout_event("under-limit", padding=200 * 1024))
    assert response.json() == {"outcome": "created"}
    assert agent_state(cluster, namespace, "under-limit") == "running"


def test_status_api_and_ops_routes_take_no_body(run_bridge: StartBridge) -> None:
    bridge = run_bridge()
    auth = {"Authorization": f"Bearer {bridge.token}"}
    url = f"{bridge.url}/v1/agents?customer=cus_x"
    assert httpx.get(url, headers=auth).status_code == 200
    refused = httpx.request("GET", url, headers=auth, content=b"{}")
    assert refused.status_code == 413
    assert refused.json() == {"error": "request body too large: this route accepts no body"}
    sock = connect(bridge)
    sock.sendall(head("/healthz", Transfer_Encoding="chunked") + b"5\r\nhello\r\n")
    assert read_answer(sock)[0] == 413
    assert bridge.metric("aura_bridge_http_refused_total", reason="body_too_large") == 2


def test_slow_clients_are_cut_off(run_bridge: StartBridge, namespace: str) -> None:
    bridge = run_bridge("--header-timeout", "1", "--body-timeout", "1")
    silent = connect(bridge)  # connects, sends nothing
    dripping_head = connect(bridge)
    dripping_head.sendall(b"POST /v1/stripe/webhook HTTP/1.1\r\nHost: b")
    dripping_body = connect(bridge)
    dripping_body.sendall(head(WEBHOOK, Content_Length="1000", Stripe_Signature="v1=0") + b"{")
    started = time.monotonic()
    assert silent.recv(1024) == b""  # closed without an answer: it asked nothing
    for sock in (dripping_head, dripping_body):
        status, headers, _ = read_answer(sock)
        assert (status, headers["connection"]) == (408, "close")
    assert time.monotonic() - started < 5  # a 1 s deadline, with room for a loaded machine
    assert bridge.metric("aura_bridge_http_refused_total", reason="header_timeout") == 2
    assert bridge.metric("aura_bridge_http_refused_total", reason="body_timeout") == 1
    # Headers that never end are refused by size, not only by time.
    huge = connect(bridge)
    # More than one read's worth: the bridge refuses while bytes are still unread, and must
    # not close with a reset that destroys its answer (it reads and drops them instead).
    pad = b"GET /healthz HTTP/1.1\r\nHost: b\r\nX-Pad: " + b"a" * (1024 * 1024)
    sender = threading.Thread(target=_send_ignoring_reset, args=(huge, pad))
    sender.start()
    assert read_answer(huge)[0] == 431
    sender.join()
    # A keep-alive connection is closed after its last allowed request.
    capped = run_bridge("--max-requests-per-connection", "2")
    sock = connect(capped)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n" * 2)
    first, _, second = sock_read_all(sock).partition(b"HTTP/1.1 200")[2].partition(b"HTTP/1.1 ")
    assert b"connection: close" not in first
    assert second.startswith(b"200") and b"connection: close" in second


def sock_read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_caps_are_answered_at_once(
    run_bridge: StartBridge, cluster: Cluster, namespace: str
) -> None:
    bridge = run_bridge(
        *("--max-inflight-webhooks", "2", "--max-connections", "5", "--body-timeout", "6")
    )
    holders = []
    for _ in range(2):  # two webhook requests in flight, their bodies still coming
        sock = connect(bridge)
        sock.sendall(head(WEBHOOK, Content_Length="100", Stripe_Signature="v1=0") + b"{")
        holders.append(sock)
    time.sleep(0.2)
    started = time.monotonic()
    busy = signed(bridge, checkout_event("while-busy"))
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert time.monotonic() - started < 3  # not after the holders' 6 s body deadline
    idle = [connect(bridge) for _ in range(3)]  # 5 connections open now
    time.sleep(0.2)
    sock = connect(bridge)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n")
    assert read_answer(sock)[0] == 503
    for s in idle:
        s.close()
    time.sleep(0.2)
    assert bridge.metric("aura_bridge_http_refused_total", reason="too_many_connections") == 1
    for s in holders:  # cut off by the body deadline, which frees their slots
        assert read_answer(s)[0] == 408
    assert signed(bridge, checkout_event("after-busy")).json() == {"outcome": "created"}
    assert bridge.metric("aura_bridge_http_refused_total", reason="busy") == 1
    with pytest.raises(ApiException) as missing:
        agent_state(cluster, namespace, "while-busy")  # the refused event left no trace
    assert missing.value.status == 404


def test_event_streams_are_bounded_per_token_and_end_when_idle(run_bridge: StartBridge) -> None:
    bridge = run_bridge("--max-streams-per-token", "2", "--stream-idle-timeout", "1.5")
    auth = {"Authorization": f"Bearer {bridge.token}"}
    url = f"{bridge.url}/v1/customers/cus_x/events"
    with httpx.Client(timeout=10, headers=auth) as http:
        with http.stream("GET", url) as one, http.stream("GET", url) as two:
            assert (one.status_code, two.status_code) == (200, 200)
            third = http.get(url)
            assert third.status_code == 429
            assert third.json() == {"detail": "at most 2 open event streams per token"}
            started = time.monotonic()
            assert list(one.iter_text()) == []  # no change for 1.5 s: the stream ended
            assert 1.0 < time.monotonic() - started < 5
        assert bridge.metric("aura_bridge_http_refused_total", reason="too_many_streams") == 1
        time.sleep(0.3)  # the bridge notices the closed stream
        with http.stream("GET", url) as again:  # both slots were given back
            assert again.status_code == 200


def test_forged_signatures_are_counted_and_logged_sparingly(run_bridge: StartBridge) -> None:
    bridge = run_bridge()
    body = json.dumps({"id": "evt_forged", "type": "invoice.paid"})
    with httpx.Client(base_url=bridge.url) as http:
        for _ in range(300):
            header = f"t={int(time.time())},v1={'0' * 64}"
            response = http.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
            assert response.json() == {"error": "invalid signature"}
    assert bridge.metric("aura_bridge_webhook_rejected_total", reason="invalid signature") == 300
    lines = [line for line in bridge.log().splitlines() if "webhook rejected" in line]
    assert 1 <= len(lines) <= 2, lines


async def test_a_flood_does_not_starve_signed_events(
    run_bridge: StartBridge, cluster: Cluster, namespace: str
) -> None:
    # Default limits, but short read deadlines so drip-feeders are cut off (and come back)
    # several times within the flood.
    bridge = run_bridge("--header-timeout", "2", "--body-timeout", "2")
    flood = Flood(bridge.port, FloodPlan(), seconds=12)
    genuine = SignedEvents(bridge.url, bridge.secret, agents=30, prefix="genuine", rate=6)
    await asyncio.gather(flood.run(), genuine.run())
    peak = bridge.peak_rss()
    print(f"flood: {dict(flood.outcomes)}")
    print(f"peak RSS {peak / MiB:.0f} MiB; signed p99 {percentile(genuine.latencies, 99):.3f}s")
    # Every genuine delivery answered 200 and applied on the apiserver.
    assert len(genuine.answers) == 60
    assert {(status, outcome) for _, status, outcome in genuine.answers} == {
        (200, "created"),
        (200, "applied"),
    }
    for name in genuine.names():
        assert agent_state(cluster, namespace, name) == "stopped"
    assert peak < MEMORY_LIMIT
    # The flood was real: each kind of hostile client was refused or cut off.
    refused = {k for k, n in flood.outcomes.items() if n}
    assert {"forged 400", "drip headers 408", "drip body 408"} <= refused
    assert refused & {"oversize 413", "oversize reset"}
    assert refused & {"chunked 413", "chunked reset"}
    assert bridge.metric("aura_bridge_http_refused_total", reason="body_too_large") > 0
    # Hundreds of forged deliveries, a couple of log lines.
    forged = bridge.metric("aura_bridge_webhook_rejected_total", reason="invalid signature")
    lines = [line for line in bridge.log().splitlines() if "webhook rejected" in line]
    assert forged > 100
    assert len(lines) <= 3, lines
