"""Bounded connection pools to the kube-apiserver, for kopf's session and ours.

Why: kopf's own session has no connection limit (`aiohttp.TCPConnector(limit=0)`), and with one
worker per Agent a fleet patching at once opens a TLS connection per concurrent patch; each
keeps an SSL buffer of 128 KiB (plus OpenSSL's own state) while it idles in the pool. At 300
Agents that was 400 connections and about 50 MiB, growing with the fleet (issue 15's memory
figure). Through `kopf.on.login`, kopf accepts a session it did not build
(`kopf.AiohttpSession`): this builds the same session from kopf's `ConnectionInfo`, with a
limit. kubernetes_asyncio's pool (100 by default) gets the same limit.

A request beyond the limit waits for a free connection; watches hold one each for as long as
they stream (one per watched kind, under ten), so the limit leaves most of it to requests.
"""

from __future__ import annotations

import aiohttp
import kopf

MAX_CONNECTIONS = 48
"""Connections per client to the apiserver (kopf's, and kubernetes_asyncio's)."""


def bounded_session(info: kopf.ConnectionInfo) -> kopf.AiohttpSession:
    """kopf's session for `info`, the way kopf builds it, with at most `MAX_CONNECTIONS`.
    Call it on the event loop (an async login handler): aiohttp binds a session to its loop."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        priority=info.priority,
        aiohttp_session=session,
    )
