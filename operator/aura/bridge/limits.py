"""Bounds on what one client can make the bridge hold: the request-level half.

The webhook is the bridge's one endpoint exposed to the internet, and the Pod has a 256 MiB
memory limit. Without bounds a single client could make it buffer any body in full before the
signature is even looked at, and a handful of large requests would get the Pod OOM-killed, and
with it every genuine Stripe delivery.

- `Limits`: every bound, each a flag of `aura bridge`; 0 turns one off.
- `RequestLimits`: an ASGI middleware in front of every route. It answers **413** at once, without
  reading a byte of the body, when the declared `Content-Length` exceeds the route's limit
  (`max_body_bytes` for the webhook; the status API and ops routes take no body at all, so any
  declared or chunked body there is refused), and it cuts a chunked or otherwise undeclared body
  off as soon as it passes the limit. It caps the webhook requests in flight, from headers to
  answer, and the bytes of their bodies held at once (`max_buffered_bytes`, the bound on their
  memory): past either, **503** at once (Stripe redelivers). A refused request reaches no
  handler, so nothing is processed, deduplicated or stored for it. Every refusal closes the
  connection (an unread body must not be parsed as the next request) and counts in
  `aura_bridge_http_refused_total{reason}`; none is logged, so a flood cannot fill the logs.
- `LogRateLimit`: a logging filter letting one line per message template through per interval
  and counting the rest into the next one; used for rejected webhook signatures and uvicorn's
  per-request warnings (the metrics keep the exact counts).

Deadlines on reading headers and bodies, the connection cap and keep-alive bounds live at the
transport level, in `protocol`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024
MAX_TEMPLATES = 1024


@dataclass(frozen=True)
class Limits:
    """The bridge's bounds against hostile or buggy clients; 0 disables one (benchmarks only)."""

    max_body_bytes: int = 1 * MiB
    """Largest webhook body. Stripe's events are a few KB to a few hundred KB."""
    max_inflight_webhooks: int = 256
    """Webhook requests between headers and answer; more are answered 503 at once."""
    max_buffered_bytes: int = 64 * MiB
    """Bytes of webhook bodies held at once by requests in progress; past it, 503. This, not
    the request count, bounds their memory: a drip-fed body holds a slot but hardly a byte."""
    max_connections: int = 512
    """Open HTTP connections (SSE streams included); requests on more are answered 503."""
    header_timeout: float = 10.0
    """Seconds from a connection's (or a keep-alive request's) first byte to its last header."""
    body_timeout: float = 20.0
    """Seconds from the last header to the last body byte."""
    max_header_bytes: int = 32 * 1024
    """Size of request line plus headers; more is answered 431."""
    keepalive_timeout: int = 5
    """Seconds an idle keep-alive connection stays open (uvicorn's own timer; cannot be off)."""
    max_requests_per_connection: int = 1000
    """Requests served on one connection before it is closed (the client reconnects)."""
    backlog: int = 1024
    """Connections the kernel queues before the bridge accepts them."""
    max_streams_per_token: int = 32
    """Event streams open at once per status API token; more are answered 429."""
    stream_idle_timeout: float = 300.0
    """Seconds an event stream may go without a change before it is closed (clients reconnect)."""

    @classmethod
    def off(cls) -> Limits:
        """Every bound disabled: the bridge as it was before these limits (benchmarks only)."""
        return cls(
            max_body_bytes=0,
            max_inflight_webhooks=0,
            max_buffered_bytes=0,
            max_connections=0,
            header_timeout=0,
            body_timeout=0,
            max_header_bytes=0,
            max_requests_per_connection=0,
            backlog=2048,
            max_streams_per_token=0,
            stream_idle_timeout=0,
        )


class BodyTooLarge(Exception):
    """The body being received passed its route's limit."""


class ClientGone(Exception):
    """The client disconnected (or was cut off by a deadline) before its body was complete."""


def body_framing(headers: list[tuple[bytes, bytes]]) -> tuple[int, bool]:
    """(declared Content-Length or 0, whether the body is chunked) from raw ASGI headers."""
    length, chunked = 0, False
    for name, value in headers:
        if name == b"content-length":
            # The HTTP parser has already refused anything but one decimal number.
            length = int(value) if value.isdigit() else 0
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return length, chunked


async def reply(send: Send, status: int, error: str, headers: dict[str, str] | None = None) -> None:
    """A small JSON error answer that also closes the connection."""
    body = json.dumps({"error": error}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """See the module docstring. `refused(reason)` is called once per refused request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Limits,
        webhook_path: str,
        refused: Callable[[str], None],
    ) -> None:
        self.app = app
        self.limits = limits
        self.webhook_path = webhook_path
        self.refused = refused
        self.inflight = 0
        self.buffered = 0
        """Bytes of webhook bodies received by requests still in progress."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        webhook = scope["path"] == self.webhook_path
        limit = self.limits.max_body_bytes if webhook else 0
        declared, chunked = body_framing(scope["headers"])
        # The status API and ops routes are GETs: they need no body, so they take none.
        too_large = (bool(limit) and declared > limit) if webhook else (declared > 0 or chunked)
        if too_large:
            self.refused("body_too_large")
            what = f"at most {limit} bytes" if webhook else "no body"
            await reply(send, 413, f"request body too large: this route accepts {what}")
            return
        if not webhook:
            # No body can follow: HTTP/1.1 carries none without a Content-Length or chunked
            # framing, both refused above.
            await self.app(scope, receive, send)
            return
        cap = self.limits.max_inflight_webhooks
        if cap and self.inflight >= cap:
            await self._busy(send)
            return
        self.inflight += 1
        request = _Request(self, limit, receive, send)
        try:
            await self.app(scope, request.receive, request.send)
        except BodyTooLarge:
            self.refused("body_too_large")
            if not request.started:
                await reply(
                    send, 413, f"request body too large: this route accepts at most {limit} bytes"
                )
        except Busy:
            if not request.started:
                await self._busy(send)
        except ClientGone:
            pass  # nobody to answer; the protocol counted why it cut the client off
        finally:
            self.inflight -= 1
            self.buffered -= request.received

    async def _busy(self, send: Send) -> None:
        self.refused("busy")
        await reply(send, 503, "too many webhook requests in progress", {"Retry-After": "1"})


class Busy(Exception):
    """Receiving more would take the webhook bodies held at once past their budget."""


class _Request:
    """One webhook request's `receive` and `send`, bounded (see `RequestLimits`)."""

    def __init__(self, limiter: RequestLimits, limit: int, receive: Receive, send: Send) -> None:
        self.limiter = limiter
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        self.complete = False
        self.started = False

    async def receive(self) -> Message:
        """Raises `BodyTooLarge` past the limit, `Busy` past the shared budget and
        `ClientGone` on a disconnect mid-body. Once the body is complete, messages pass
        through untouched (a streaming response listens for the disconnect)."""
        message = await self._receive()
        if self.complete:
            return message
        if message["type"] == "http.disconnect":
            raise ClientGone
        size = len(message.get("body", b""))
        self.received += size
        self.limiter.buffered += size
        if self.limit and self.received > self.limit:
            raise BodyTooLarge
        budget = self.limiter.limits.max_buffered_bytes
        if budget and self.limiter.buffered > budget:
            raise Busy
        self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class LogRateLimit(logging.Filter):
    """Passes one record per (logger, message template) per `interval` seconds; the next one
    that passes says how many were suppressed meanwhile. Memory is bounded by the number of
    templates, which are literals in the code, never by the traffic (and at worst by
    `MAX_TEMPLATES`)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last: dict[tuple[str, Any], float] = {}
        self._suppressed: dict[tuple[str, Any], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if len(self._last) >= MAX_TEMPLATES:  # only if someone logs computed messages
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed and last is not None and isinstance(record.args, tuple):
            record.msg = f"{record.msg} (and %d more like it in the last %.0f s)"
            record.args = (*record.args, suppressed, now - last)
        return True
