"""A real proxy standing in for the Tailscale sidecar: SOCKS5 and HTTP on one port, like
tailscaled's `--socks5-server` and `--outbound-http-proxy-listen` sharing an address.

It reaches only the "tailnet": a table of names (HOST, PORT) -> the local (HOST, PORT) that plays
that device. Anything else is refused, and every request is logged, so a test can tell that a
connection went through the proxy, to which name, and that nothing else was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from dataclasses import dataclass, field


@dataclass
class TailnetProxy:
    routes: dict[tuple[str, int], tuple[str, int]]
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    """(protocol, host, port) of every request, routed or refused."""
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TailnetProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._client, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x05":
                await self._socks5(reader, writer)
            else:
                await self._http(first, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _open(
        self, protocol: str, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        self.requests.append((protocol, host, port))
        target = self.routes.get((host, port))
        if target is None:
            return None
        return await asyncio.open_connection(*target)

    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        methods = await reader.readexactly((await reader.readexactly(1))[0])
        if 0 not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x00")
        version, command, _, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif atyp == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        port = int.from_bytes(await reader.readexactly(2), "big")
        upstream = await self._open("socks5", host, port) if (version, command) == (5, 1) else None
        if upstream is None:
            writer.write(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
            return
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await _splice(reader, writer, *upstream)

    async def _http(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = first + await reader.readuntil(b"\r\n\r\n")
        request_line, _, rest = head.partition(b"\r\n")
        method, target, version = request_line.decode().split(" ")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await self._open("http-connect", host.strip("[]"), int(port))
            if upstream is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await _splice(reader, writer, *upstream)
            return
        # Absolute-form request: forward it in origin form.
        assert target.startswith("http://"), target
        authority, slash, path = target[len("http://") :].partition("/")
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
        upstream = await self._open("http", host.strip("[]"), int(port))
        if upstream is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        up_reader, up_writer = upstream
        up_writer.write(f"{method} {slash}{path} {version}\r\n".encode() + rest)
        await _splice(reader, writer, up_reader, up_writer)


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError, RuntimeError):
            dst.write_eof()

    await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
    up_writer.close()
