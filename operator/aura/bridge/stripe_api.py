"""The one Stripe call the bridge makes, behind a Protocol so tests can use a fake.

`StripeApi.retrieve_subscription(id)` returns the subscription as a plain dict, None when
Stripe says it does not exist, and raises `Retryable` for anything transient (timeouts,
5xx, 409, 429, connection failures) or `Permanent` for a refused request (bad key, another
4xx). Error messages carry the HTTP status and Stripe's error code only, never the key.

`StripeClientApi` is a plain `GET /v1/subscriptions/{id}` on one long-lived aiohttp session,
pointed at `STRIPE_API_BASE` when given (e.g. the Aura sandbox). It speaks exactly what the
official `stripe` library would send for `subscriptions.retrieve`: the same bearer key, the
library's pinned `Stripe-Version` (so the answer has the shape the library and the tests
expect), the library's CA bundle, no proxy from the environment. It does not go through
`stripe.StripeClient`: the bridge makes this one call per webhook, and the client's request
pipeline (a user-agent JSON and an AI-agent environment scan per request, a logfmt line
formatted for every request whether logged or not, the response wrapped and unwrapped) cost
0.8 ms of CPU per call against 0.4 ms for the same GET on aiohttp, the largest single share
of the bridge's CPU at 200 events/s. The sandbox's conformance tests and the demo drive
Stripe with the official client.
"""

from __future__ import annotations

import json
import ssl
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import stripe

from aura import __version__
from aura.bridge.errors import Permanent, Retryable

STRIPE_API = "https://api.stripe.com"


class StripeApi(Protocol):
    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        """The subscription's current state; see the module docstring."""
        ...

    async def close(self) -> None: ...


def classify(status: int, body: bytes) -> Permanent | Retryable:
    """The error for a non-200, non-404 answer, named by status and Stripe's error code."""
    try:
        error = json.loads(body).get("error") or {}
        code = str(error.get("code") or error.get("type") or "")
    except (ValueError, AttributeError):
        code = ""
    what = f"{status} {code}".strip()
    if status in (401, 403):
        return Permanent(f"stripe rejected the API key ({status})")
    if 400 <= status < 500 and status not in (408, 409, 429):
        return Permanent(f"stripe refused the request ({what})")
    return Retryable(f"stripe unavailable ({what})")


class StripeClientApi:
    """`StripeApi` over aiohttp; `timeout` bounds each request. Create it inside the event
    loop that uses it (the session binds to the running loop)."""

    def __init__(self, api_key: str, api_base: str | None = None, timeout: float = 2.0) -> None:
        self._base = (api_base or STRIPE_API).rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Stripe-Version": stripe.api_version,
            "User-Agent": f"aura-bridge/{__version__} (Stripe/v1 PythonBindings/{stripe.VERSION})",
        }
        tls = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls),
            timeout=aiohttp.ClientTimeout(total=timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        url = f"{self._base}/v1/subscriptions/{quote(subscription_id, safe='')}"
        try:
            async with self._session.get(url, headers=self._headers) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Retryable(f"stripe unreachable ({type(exc).__name__})") from None
        if status == 404:
            return None
        if status != 200:
            raise classify(status, body)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise Retryable("stripe answered 200 without a JSON object")
        return data

    async def close(self) -> None:
        await self._session.close()
