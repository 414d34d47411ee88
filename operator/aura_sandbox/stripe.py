"""The Stripe API subset of the sandbox, under `/stripe/v1`, and its admin actions.

Point the official client at it with `api_base` (or `base_addresses={"api": ...}`) =
`<sandbox>/stripe` and the `stripe_api_key` from the ready line. Bodies are form-encoded with
Stripe's bracket notation (`metadata[agent_name]=x`, `line_items[0][price]=price_...`).

| Route (under `/stripe/v1`) | Effect | Events |
| --- | --- | --- |
| `POST /customers`, `GET /customers/{id}` | create / read | `customer.created` |
| `POST /prices`, `GET /prices/{id}` | create / read (recurring) | `price.created` |
| `POST /checkout/sessions`, `GET /checkout/sessions/{id}` | open a session | - |
| `POST /subscriptions`, `GET /subscriptions/{id}` | create (paid) / read | created, invoice.* |
| `GET /subscriptions` | list: `customer`, `price`, `status`, `limit`, `starting_after` | - |
| `POST /subscriptions/{id}` | update `metadata`, `cancel_at_period_end` | `.updated` |
| `DELETE /subscriptions/{id}` | cancel | `customer.subscription.deleted` |
| `POST /subscriptions/{id}/pause`, `/resume` | pause / resume | `.paused` / `.resumed` |
| `GET /invoices/{id}`, `POST /invoices/{id}/pay` | read / pay | `invoice.paid`, ... |
| `GET /events`, `GET /events/{id}` | the emitted events | - |

Admin (no auth, loopback only): `POST /admin/stripe/checkout/{id}/complete` (the customer
paid), `POST /admin/stripe/invoices/{id}/pay`, `POST /admin/stripe/subscriptions/{id}/fail_payment`
(body `{"status": "past_due"|"unpaid"|"canceled"}`, default past_due), and
`GET /admin/stripe/deliveries` (attempts per event).

Errors use Stripe's envelope `{"error": {"type", "message", "code"?, "param"?}}`; a missing or
wrong key is 401; a route or method Stripe does not have is 404 "Unrecognized request URL (METHOD:
/v1/...)", as the real API answers (so the official library raises `InvalidRequestError`, not a
generic `APIError` that callers would retry). Objects carry every key of the real ones
(`stripe_objects`, `stripe_billing`). The state and its rules live in `stripe_state.StripeState`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from aura_sandbox.config import SandboxConfig
from aura_sandbox.http_faults import ERROR_RENDERERS, register_error_renderer
from aura_sandbox.stripe_errors import StripeError
from aura_sandbox.stripe_state import StripeState
from aura_sandbox.world import World

STATE_KEY = web.AppKey("stripe_state", StripeState)
PREFIX = "/stripe/v1"
DELIVERY_TIMEOUT = 10.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, code: str | None = None) -> web.Response:
    return web.json_response(StripeError(status, message, code).body(), status=status)


def unrecognized(request: web.Request) -> web.Response:
    """Stripe's answer to a path or method it does not serve (404 for both, like the real API)."""
    path = "/v1" + request.path.removeprefix(PREFIX)
    return error_response(404, f"Unrecognized request URL ({request.method}: {path}).")


def decode_form(text: str) -> dict[str, Any]:
    """Stripe's bracket notation to nested dicts; dicts keyed 0..n become lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    result: dict[str, Any] = _listify(root)
    return result


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


async def _params(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    if request.content_type == "application/json" and text:
        import json

        loaded = json.loads(text)
        return loaded if isinstance(loaded, dict) else {}
    return decode_form(text) | decode_form(request.query_string)


def _auth_middleware(api_key: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PREFIX + "/") or request.path == PREFIX:
            header = request.headers.get("Authorization", "")
            if header != f"Bearer {api_key}":
                return error_response(401, "Invalid API Key provided.", "api_key_invalid")
            try:
                return await handler(request)
            except StripeError as exc:
                return web.json_response(exc.body(), status=exc.status)
            except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
                return unrecognized(request)
        if request.path.startswith("/admin/stripe/"):
            try:
                return await handler(request)
            except StripeError as exc:
                return web.json_response(exc.body(), status=exc.status)
        return await handler(request)

    return middleware


def add_routes(app: web.Application, state: StripeState, world: World) -> None:
    pub = state.public
    r = app.router

    async def ok(obj: dict[str, Any]) -> web.Response:
        return web.json_response(pub(obj))

    async def create_customer(req: web.Request) -> web.Response:
        return await ok(state.create_customer(await _params(req)))

    async def get_customer(req: web.Request) -> web.Response:
        return await ok(state.get("customer", state.customers, req.match_info["id"]))

    async def create_price(req: web.Request) -> web.Response:
        return await ok(state.create_price(await _params(req)))

    async def get_price(req: web.Request) -> web.Response:
        return await ok(state.price(req.match_info["id"]))

    async def create_session(req: web.Request) -> web.Response:
        return await ok(state.create_session(await _params(req), world.base_url))

    async def get_session(req: web.Request) -> web.Response:
        return await ok(state.get("checkout session", state.sessions, req.match_info["id"]))

    async def create_subscription(req: web.Request) -> web.Response:
        params = await _params(req)
        items = params.get("items")
        if not params.get("customer") or not isinstance(items, list) or not items:
            raise StripeError(400, "customer and items are required", "parameter_missing")
        sub = state.create_subscription(
            str(params["customer"]),
            items,
            params.get("metadata") or {},
            int(params.get("trial_period_days") or 0),
        )
        return await ok(sub)

    async def list_subscriptions(req: web.Request) -> web.Response:
        return web.json_response(state.list_subscriptions(decode_form(req.query_string)))

    async def get_subscription(req: web.Request) -> web.Response:
        return await ok(state.subscription(req.match_info["id"]))

    async def update_subscription(req: web.Request) -> web.Response:
        return await ok(state.update_subscription(req.match_info["id"], await _params(req)))

    async def cancel_subscription(req: web.Request) -> web.Response:
        return await ok(state.cancel_subscription(req.match_info["id"]))

    async def pause_subscription(req: web.Request) -> web.Response:
        return await ok(state.pause_subscription(req.match_info["id"]))

    async def resume_subscription(req: web.Request) -> web.Response:
        return await ok(state.resume_subscription(req.match_info["id"]))

    async def get_invoice(req: web.Request) -> web.Response:
        return await ok(state.get("invoice", state.invoices, req.match_info["id"]))

    async def pay_invoice(req: web.Request) -> web.Response:
        return await ok(state.pay_invoice(req.match_info["id"]))

    async def list_events(req: web.Request) -> web.Response:
        wanted = req.query.get("type")
        data = [e for e in state.events.values() if wanted in (None, e["type"])]
        data.reverse()  # newest first, as Stripe lists
        return web.json_response(
            {"object": "list", "data": data, "has_more": False, "url": "/v1/events"}
        )

    async def get_event(req: web.Request) -> web.Response:
        return await ok(state.get("event", state.events, req.match_info["id"]))

    async def admin_complete(req: web.Request) -> web.Response:
        return await ok(state.complete_checkout(req.match_info["id"]))

    async def admin_pay(req: web.Request) -> web.Response:
        return await ok(state.pay_invoice(req.match_info["id"]))

    async def admin_fail(req: web.Request) -> web.Response:
        body = await req.json() if req.can_read_body else {}
        status = (body or {}).get("status", "past_due")
        if status not in ("past_due", "unpaid", "canceled"):
            raise StripeError(400, "status must be past_due, unpaid or canceled", param="status")
        return await ok(state.fail_payment(req.match_info["id"], status))

    async def admin_deliveries(req: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "event": d.event_id,
                    "type": state.events[d.event_id]["type"],
                    "attempts": d.attempts,
                    "last_status": d.last_status,
                    "delivered": d.done,
                }
                for d in state.deliveries.values()
            ]
        )

    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/customers", create_customer),
        ("GET", "/customers/{id}", get_customer),
        ("POST", "/prices", create_price),
        ("GET", "/prices/{id}", get_price),
        ("POST", "/checkout/sessions", create_session),
        ("GET", "/checkout/sessions/{id}", get_session),
        ("POST", "/subscriptions", create_subscription),
        ("GET", "/subscriptions", list_subscriptions),
        ("GET", "/subscriptions/{id}", get_subscription),
        ("POST", "/subscriptions/{id}", update_subscription),
        ("DELETE", "/subscriptions/{id}", cancel_subscription),
        ("POST", "/subscriptions/{id}/pause", pause_subscription),
        ("POST", "/subscriptions/{id}/resume", resume_subscription),
        ("GET", "/invoices/{id}", get_invoice),
        ("POST", "/invoices/{id}/pay", pay_invoice),
        ("GET", "/events", list_events),
        ("GET", "/events/{id}", get_event),
    ]
    for method, path, handler in routes:
        r.add_route(method, PREFIX + path, handler)
    r.add_post("/admin/stripe/checkout/{id}/complete", admin_complete)
    r.add_post("/admin/stripe/invoices/{id}/pay", admin_pay)
    r.add_post("/admin/stripe/subscriptions/{id}/fail_payment", admin_fail)
    r.add_get("/admin/stripe/deliveries", admin_deliveries)


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    """Create the Stripe state, persist it, mount its routes, deliver its webhooks."""
    state = StripeState(
        webhook_url=getattr(config, "stripe_webhook_url", None),
        webhook_secret=getattr(config, "stripe_webhook_secret", ""),
        schedule=world.schedule,
    )
    session: dict[str, aiohttp.ClientSession] = {}

    async def send(url: str, payload: bytes, headers: dict[str, str]) -> int:
        if "s" not in session or session["s"].closed:
            session["s"] = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
            )
        async with session["s"].post(url, data=payload, headers=headers) as response:
            await response.read()
            return response.status

    async def close_session(app: web.Application) -> None:
        if "s" in session:
            await session["s"].close()

    state.send = send
    app[STATE_KEY] = state
    app.on_cleanup.append(close_session)
    world.register_part("stripe", state)
    app.middlewares.append(_auth_middleware(config.stripe_api_key))
    add_routes(app, state, world)
    world.ready_info.update(
        {"stripe_url": f"{world.base_url}/stripe", "stripe_api_key": config.stripe_api_key}
    )
    if ERROR_RENDERERS in app:
        register_error_renderer(
            app, PREFIX, lambda status, code, msg: error_response(status, msg, code)
        )
