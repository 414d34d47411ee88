"""The one Stripe call the bridge makes, behind a Protocol so tests can use a fake.

`StripeApi.retrieve_subscription(id)` returns the subscription as a plain dict, None when
Stripe says it does not exist, and raises `Retryable` for anything transient (timeouts,
5xx, rate limits, connection failures) or `Permanent` for a refused request (bad key).
`StripeClientApi` adapts the official `stripe` client (async methods over aiohttp: its httpx
transport costs several times more CPU per call under concurrency) and points it
at `STRIPE_API_BASE` when given, e.g. the Aura sandbox. Error messages carry the HTTP status
and Stripe's error code only, never the key.

The subscription is fetched with the client's `raw_request_async`: the library still builds,
authenticates and sends the request and raises its own errors for error answers, but the
body stays the plain JSON it parsed. The typed `retrieve_async` turns every response into a
tree of `StripeObject`s (about a hundred attribute writes for one subscription) only for the
bridge to turn it back into a dict: at 200 events/s that conversion was the bridge's largest
CPU cost and its largest source of garbage.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import stripe

from aura.bridge.errors import Permanent, Retryable


class StripeApi(Protocol):
    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        """The subscription's current state; see the module docstring."""
        ...

    async def close(self) -> None: ...


class StripeClientApi:
    """`StripeApi` on `stripe.StripeClient`; `timeout` bounds each request."""

    def __init__(self, api_key: str, api_base: str | None = None, timeout: float = 2.0) -> None:
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        bases: dict[str, str] = {"api": api_base.rstrip("/")} if api_base else {}
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=bases,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=0,  # the caller owns the time budget and the fallback
        )

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        try:
            response = await self._client.raw_request_async(
                "get", f"/v1/subscriptions/{quote(subscription_id, safe='')}"
            )
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise Permanent(f"stripe refused the request ({exc.http_status} {exc.code})") from None
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise Permanent(f"stripe rejected the API key ({exc.http_status})") from None
        except stripe.StripeError as exc:
            raise Retryable(f"stripe unavailable ({exc.http_status})") from None
        data = response.data
        if not isinstance(data, dict):
            raise Retryable(f"stripe answered {response.code} without a JSON object")
        return data

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
