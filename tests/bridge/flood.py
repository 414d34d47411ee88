"""Hostile loopback traffic against a real `aura bridge` process while genuine, correctly signed
Stripe events are delivered: shared by `tests/bridge/test_hostile.py` (asserts) and
`hack/bench/hostile.py` (prints figures).

`start_bridge()` runs `.venv/bin/aura bridge` as a subprocess against a real apiserver and reads
its peak resident memory from `/proc/<pid>/status` (`VmHWM`, the kernel's high-water mark, so no
sampling can miss a spike). `Flood` runs four kinds of hostile clients on raw sockets until a
deadline, each recording how its requests ended:

- `oversize`: declares a huge `Content-Length` and sends the body as fast as it can;
- `chunked`: the same body without a declared length (`Transfer-Encoding: chunked`);
- `drip`: a request line and headers, or a body, one byte every `drip_interval` seconds;
- `forged`: bursts of concurrent, well-sized bodies with a forged signature.

`SignedEvents` meanwhile sends each Agent a checkout (creates it, `running`) and then a pause
(`stopped`), recording every answer and its latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import stripe

from aura.bridge.limits import Limits

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
MEMORY_LIMIT = 256 * MiB
"""The bridge Deployment's memory limit (manifests/bridge.yaml)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BridgeProcess:
    """A running `aura bridge` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    secret: str
    token: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{key} not in /proc/{self.proc.pid}/status")

    def peak_rss(self) -> int:
        """The process's peak resident memory so far, in bytes."""
        return self._status_kib("VmHWM") * 1024

    def rss(self) -> int:
        return self._status_kib("VmRSS") * 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics, 0 when absent."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{want}}} " if labels else f"{name} "
        for line in self.metrics().splitlines():
            if line.startswith(prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_bridge(
    kubeconfig: str, namespace: str, log_path: Path, args: tuple[str, ...] = ()
) -> BridgeProcess:
    """`aura bridge` on a free loopback port with a fresh secret and token; waits for /readyz.
    No `STRIPE_API_KEY`: states come from the events' own objects."""
    port = free_port()
    secret = "whsec_flood" + secrets.token_hex(12)
    token = "tok_flood" + secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "AURA_"))}
    env |= {
        "KUBECONFIG": kubeconfig,
        "STRIPE_WEBHOOK_SECRET": secret,
        "AURA_API_TOKENS": token,
        "AURA_BRIDGE_NAMESPACE": namespace,
    }
    cmd = [str(REPO / ".venv/bin/aura"), "bridge", "--host", "127.0.0.1", "--port", str(port)]
    log = log_path.open("wb")
    proc = subprocess.Popen([*cmd, "--log-format", "text", *args], env=env, stderr=log)
    log.close()
    bridge = BridgeProcess(proc, port, secret, token, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"bridge exited with {proc.returncode}:\n{bridge.log()[-3000:]}")
        try:
            if httpx.get(f"{bridge.url}/readyz", timeout=1).status_code == 200:
                return bridge
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    bridge.stop()
    raise AssertionError(f"bridge not ready within 60 s:\n{bridge.log()[-3000:]}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- hostile clients -------------------------------------------------------------------------


@dataclass(frozen=True)
class FloodPlan:
    """How many hostile clients of each kind run at once, and what they send."""

    oversize: int = 8
    oversize_bytes: int = 20 * MiB
    chunked: int = 4
    drip: int = 40
    drip_interval: float = 0.5
    forged_burst: int = 40
    forged_bytes: int = 256 * 1024
    forged_every: float = 0.5


async def _status_of(reader: asyncio.StreamReader, wait: float) -> str:
    """The status code of the answer as text, or how the connection ended instead."""
    try:
        line = await asyncio.wait_for(reader.readline(), wait)
    except TimeoutError:
        return "no answer"
    except (ConnectionError, OSError):
        return "reset"
    parts = line.split()
    return parts[1].decode() if len(parts) >= 2 else "closed"


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: bridge", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Flood:
    port: int
    plan: FloodPlan
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)

    async def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        workers = [
            *(self._loop(deadline, self._oversize) for _ in range(self.plan.oversize)),
            *(self._loop(deadline, self._chunked) for _ in range(self.plan.chunked)),
            *(self._loop(deadline, self._drip, i % 2 == 0) for i in range(self.plan.drip)),
            self._forged(deadline),
        ]
        await asyncio.gather(*workers)

    async def _loop(self, deadline: float, attempt: Any, *args: Any) -> None:
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(attempt(*args), left)
            except TimeoutError:
                return
            except (ConnectionError, OSError):
                self.outcomes["connect failed"] += 1
            await asyncio.sleep(0.05)  # a bounded rate: the load must not be the sender's CPU

    async def _send_body(
        self, kind: str, head: bytes, chunks: int, chunk: bytes, frame: bool = False
    ) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        answer = asyncio.create_task(_status_of(reader, 120))
        try:
            try:
                writer.write(head)
                for _ in range(chunks):
                    if answer.done():
                        break  # answered (refused) before the body was through
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if frame else chunk)
                    await writer.drain()
                if frame:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            self.outcomes[f"{kind} {await answer}"] += 1
        finally:
            answer.cancel()
            writer.close()

    async def _oversize(self) -> None:
        size = self.plan.oversize_bytes
        chunk = b"x" * (256 * 1024)
        headers = {"Content-Length": str(size), "Stripe-Signature": "t=1,v1=00"}
        await self._send_body("oversize", _head(WEBHOOK, headers), size // len(chunk), chunk)

    async def _chunked(self) -> None:
        size = self.plan.oversize_bytes
        chunk = b"x" * (256 * 1024)
        headers = {"Transfer-Encoding": "chunked", "Stripe-Signature": "t=1,v1=00"}
        head = _head(WEBHOOK, headers)
        await self._send_body("chunked", head, size // len(chunk), chunk, frame=True)

    async def _drip(self, in_headers: bool) -> None:
        """Drip-feeds the headers (`in_headers`) or a body until the bridge hangs up."""
        kind = "drip headers" if in_headers else "drip body"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        answer = asyncio.create_task(_status_of(reader, 3600))
        if in_headers:
            data = f"POST {WEBHOOK} HTTP/1.1\r\nHost: bridge\r\nX-Padding: " + "a" * 100_000
            writer.write(data[:40].encode())
            rest = data[40:].encode()
        else:
            writer.write(_head(WEBHOOK, {"Content-Length": "100000", "Stripe-Signature": "v1=0"}))
            rest = b"{" * 100_000
        try:
            for byte in rest:
                if answer.done():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.plan.drip_interval)
        except (ConnectionError, OSError):
            pass
        finally:
            # Cut off by the bridge, or still held when the flood ended.
            self.outcomes[f"{kind} {answer.result() if answer.done() else 'held'}"] += 1
            answer.cancel()
            writer.close()

    async def _forged(self, deadline: float) -> None:
        body = json.dumps({"id": "evt_forged", "padding": "p" * self.plan.forged_bytes}).encode()
        signature = f"t={int(time.time())},v1={secrets.token_hex(32)}"
        headers = {"Content-Length": str(len(body)), "Stripe-Signature": signature}
        head = _head(WEBHOOK, headers)

        async def one() -> None:
            try:
                await self._send_body("forged", head, 1, body)
            except (ConnectionError, OSError):
                self.outcomes["forged connect failed"] += 1

        while deadline - time.monotonic() > 0:
            burst = asyncio.gather(*(one() for _ in range(self.plan.forged_burst)))
            await asyncio.gather(burst, asyncio.sleep(self.plan.forged_every))


WEBHOOK = "/v1/stripe/webhook"


# -- genuine events --------------------------------------------------------------------------


def _event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_flood" + secrets.token_hex(10),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": type_,
        "data": {"object": obj},
    }


@dataclass
class SignedEvents:
    """Genuine deliveries during the flood: per Agent, a checkout, then a pause."""

    url: str
    secret: str
    agents: int
    prefix: str
    rate: float = 10.0
    answers: list[tuple[str, int, str]] = field(default_factory=list)
    """(agent, HTTP status, outcome or error) per delivery."""
    latencies: list[float] = field(default_factory=list)

    def names(self) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(self.agents)]

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=20, keepalive_expiry=2)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=60) as http:
            tasks = []
            for name in self.names():
                tasks.append(asyncio.create_task(self._agent(http, name)))
                await asyncio.sleep(2 / self.rate)  # two events per agent
            await asyncio.gather(*tasks)

    async def _agent(self, http: httpx.AsyncClient, name: str) -> None:
        sub, customer = "sub_" + secrets.token_hex(8), "cus_" + secrets.token_hex(8)
        checkout = {
            "id": "cs_" + secrets.token_hex(8),
            "object": "checkout.session",
            "mode": "subscription",
            "customer": customer,
            "subscription": sub,
            "metadata": {"agent_name": name},
        }
        await self._send(http, name, _event("checkout.session.completed", checkout))
        await asyncio.sleep(1 / self.rate)
        paused = {"id": sub, "object": "subscription", "customer": customer, "status": "paused"}
        await self._send(http, name, _event("customer.subscription.paused", paused))

    async def _send(self, http: httpx.AsyncClient, name: str, event: dict[str, Any]) -> None:
        body = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(body, self.secret)
        started = time.perf_counter()
        try:
            response = await http.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
        except httpx.HTTPError as exc:
            self.answers.append((name, 0, type(exc).__name__))
            return
        self.latencies.append(time.perf_counter() - started)
        outcome = response.json().get("outcome", response.text) if response.content else ""
        self.answers.append((name, response.status_code, str(outcome)))


def _flags(limits: Limits) -> tuple[str, ...]:
    pairs = (
        (f"--{f.name.replace('_', '-')}", str(getattr(limits, f.name))) for f in fields(limits)
    )
    return tuple(part for pair in pairs for part in pair)


NO_LIMITS = _flags(Limits.off())
"""`aura bridge` flags turning every limit off: the bridge as it was before them."""
