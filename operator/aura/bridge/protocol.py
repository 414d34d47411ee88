"""uvicorn's httptools protocol with the transport-level bounds uvicorn lacks.

uvicorn has an idle keep-alive timer and nothing else: a connection that sends nothing, or
drip-feeds its request line, headers or body a byte at a time, is held forever; the header
section may grow without bound (llhttp sets no limit); and its own concurrency cap logs one
warning per refused request, which a flood turns into a flood of log lines. So the subclass
built by `guarded_protocol(limits, refused)` adds, per connection:

- a **header deadline** (`header_timeout`) from the connection's opening, or from the first byte
  of a following keep-alive request, to the end of the headers;
- a **body deadline** (`body_timeout`) from the end of the headers to the last body byte;
- a **header size** cap (`max_header_bytes`): 431;
- a **connection cap** (`max_connections`): a request arriving while more connections are open
  gets 503 before any application code runs;
- **keep-alive bounds**: uvicorn's idle timer (`keepalive_timeout`), plus at most
  `max_requests_per_connection` requests per connection.

A missed deadline is answered 408 (if part of a request arrived and no answer has begun) and the
connection closed; a handler still waiting for the body sees a disconnect. Every refusal closes
with a **linger**: the answer is followed by a FIN, and whatever the client still sends is read
and dropped until it closes or `LINGER_SECONDS` pass. Closing a socket with unread bytes makes
the kernel send a reset instead, and a reset can destroy the answer in the client's buffer
before it reads it (a 431 to a client still sending its 64 KiB of headers, say). Each refusal calls
`refused(reason)` (a metric) and logs nothing. This leans on uvicorn's protocol class and the
parser callbacks httptools invokes by name (`on_message_begin`, `on_headers_complete`,
`on_body`, `on_message_complete`); `tests/bridge/test_hostile.py` drives every path against
the real server, so a uvicorn upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from aura.bridge.limits import Limits, body_framing

LINGER_SECONDS = 2.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring; use `guarded_protocol()` to bind the limits."""

    limits: ClassVar[Limits] = Limits()
    refused: ClassVar[Callable[[str], None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # between requests, or inside a request line and headers
        self._head_bytes = 0
        self._requests = 0
        self._lingering = False  # refused and answered: input is read and dropped

    # Deadlines

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._expire, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refused(self) -> bool:
        return self._lingering or self.transport.is_closing()

    def _expire(self, reason: str) -> None:
        self._deadline = None
        if self._refused():
            return
        type(self).refused(reason)
        if self._in_head and not self._head_bytes:
            # Nothing of a request arrived: hang up without an answer a client might take
            # for that of the request it is about to send.
            self.transport.close()
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The handler (if any) is waiting for body bytes that will not come: let it see
            # a disconnect now, and make its late answer a no-op.
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if not answered:
                self._answer(408, b"request not received in time")
                return
            self.transport.close()
        else:
            self._answer(408, b"request not received in time")

    def _answer(self, status: int, text: bytes) -> None:
        """A plain-text answer written straight to the transport, then a lingering close."""
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: text/plain; charset=utf-8\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(text))
        self.transport.write(b"".join(head) + text)
        self._linger()

    def _linger(self) -> None:
        """Half-close after the answer, drop input until the client closes, then close."""
        self._lingering = True
        self._disarm()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.transport.resume_reading()  # uvicorn may have paused it for a large body
        self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # Protocol and parser callbacks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        # Counted on the raw bytes: httptools accumulates a header value until it ends, so
        # its callbacks would come too late for one endless header.
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        cap = self.limits.max_header_bytes
        if self._in_head and cap and self._head_bytes > cap and not self._refused():
            type(self).refused("headers_too_large")
            self._answer(431, b"request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a keep-alive request: the idle timer ran until now
            self._arm(self.limits.header_timeout, "header_timeout")

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes = False, 0
        if self._refused():
            return
        cap = self.limits.max_connections
        if cap and len(self.connections) > cap:
            type(self).refused("too_many_connections")
            self._answer(503, b"too many connections")
            return
        self._requests += 1
        super().on_headers_complete()
        length, chunked = body_framing(self.headers)
        if length or chunked:
            self._arm(self.limits.body_timeout, "body_timeout")
        most = self.limits.max_requests_per_connection
        if most and self._requests >= most and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with `connection: close`

    def on_body(self, body: bytes) -> None:
        if not self._refused():  # the rest of the body is dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        if not self._refused():
            super().on_message_complete()


def guarded_protocol(limits: Limits, refused: Callable[[str], None]) -> type[HttpToolsProtocol]:
    """A `GuardedHttpToolsProtocol` class bound to `limits`, for `uvicorn.Config(http=...)`."""
    attrs = {"limits": limits, "refused": staticmethod(refused)}
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), attrs)
