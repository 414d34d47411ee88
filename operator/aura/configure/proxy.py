"""Reaching agent hosts through the tailnet proxy (`--tailnet-proxy HOST:PORT`).

In Kubernetes the operator's Pod is not on the tailnet: a Tailscale sidecar in userspace
networking mode (no NET_ADMIN, no /dev/net/tun) joins it instead and serves, on one local port,
an HTTP proxy and a SOCKS5 proxy into the tailnet (tailscaled `--outbound-http-proxy-listen`
and `--socks5-server` on the same address). The operator then sends

- its gateway probes through the HTTP proxy (`http_proxy_url`, given to httpx), and
- every SSH connection Ansible makes through the SOCKS5 proxy, as an ssh `ProxyCommand` that
  runs this module (`ansible_ssh_env`): no netcat or other binary is needed in the image.

Without the setting nothing changes: connections go straight out, as on a host that is itself
on the tailnet.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
import sys
import threading


def parse_proxy(value: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[IPv6]:PORT`, or with a `socks5://`/`http://` prefix) -> (host, port).

    Raises ValueError naming the setting and the expected form.
    """
    text = value.strip()
    for prefix in ("socks5h://", "socks5://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"--tailnet-proxy (AURA_TAILNET_PROXY) must be HOST:PORT of the tailnet sidecar's "
            f"proxy, e.g. 127.0.0.1:1055; got {value!r}"
        )
    return host, int(port)


def http_proxy_url(value: str | None) -> str | None:
    """The HTTP proxy URL for httpx, or None when no tailnet proxy is configured."""
    if not value:
        return None
    host, port = parse_proxy(value)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def ssh_proxy_args(value: str | None) -> list[str]:
    """ssh options that route the connection through the SOCKS5 proxy (empty without one)."""
    if not value:
        return []
    host, port = parse_proxy(value)
    command = shlex.join([sys.executable, "-m", "aura.configure.proxy", host, str(port)])
    return ["-o", f"ProxyCommand={command} %h %p"]


def ansible_ssh_env(value: str | None) -> dict[str, str]:
    """Environment for ansible-playbook: `ANSIBLE_SSH_EXTRA_ARGS` with the ProxyCommand.

    Extra args are appended to the ssh command line after the inventory's common args, so the
    configurator's own ssh options stay as they are.
    """
    args = ssh_proxy_args(value)
    return {"ANSIBLE_SSH_EXTRA_ARGS": shlex.join(args)} if args else {}


# --- the ProxyCommand: a SOCKS5 CONNECT, then stdin/stdout <-> the tunnel -------------------


def _socks5_connect(proxy_host: str, proxy_port: int, host: str, port: int) -> socket.socket:
    sock = socket.create_connection((proxy_host, proxy_port), timeout=30)
    sock.sendall(b"\x05\x01\x00")  # version 5, one method: no authentication
    if _recv_exact(sock, 2) != b"\x05\x00":
        raise OSError("the SOCKS5 proxy refused the no-authentication method")
    try:
        address = ipaddress.ip_address(host)
        target = (b"\x01" if address.version == 4 else b"\x04") + address.packed
    except ValueError:
        encoded = host.encode("idna")
        target = b"\x03" + bytes([len(encoded)]) + encoded
    sock.sendall(b"\x05\x01\x00" + target + port.to_bytes(2, "big"))
    reply = _recv_exact(sock, 4)
    if reply[1] != 0:
        raise OSError(f"the SOCKS5 proxy could not connect to {host}:{port} (reply {reply[1]})")
    skip = {1: 4, 4: 16}.get(reply[3])
    _recv_exact(sock, (skip if skip is not None else _recv_exact(sock, 1)[0]) + 2)
    sock.settimeout(None)
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("the SOCKS5 proxy closed the connection")
        data += chunk
    return data


def _pump_stdin(sock: socket.socket) -> None:
    while chunk := os.read(0, 65536):
        sock.sendall(chunk)
    sock.shutdown(socket.SHUT_WR)


def main(argv: list[str]) -> int:
    """`python -m aura.configure.proxy PROXY_HOST PROXY_PORT HOST PORT` (ssh's ProxyCommand)."""
    if len(argv) != 4 or not argv[1].isdigit() or not argv[3].isdigit():
        print(
            "usage: python -m aura.configure.proxy PROXY_HOST PROXY_PORT HOST PORT", file=sys.stderr
        )
        return 2
    try:
        sock = _socks5_connect(argv[0], int(argv[1]), argv[2], int(argv[3]))
    except OSError as exc:
        print(f"tailnet proxy {argv[0]}:{argv[1]}: {exc}", file=sys.stderr)
        return 1
    threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
    out = sys.stdout.buffer
    while chunk := sock.recv(65536):
        out.write(chunk)
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
