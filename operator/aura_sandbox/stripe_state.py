"""The sandbox's Stripe world: customers, prices, checkout sessions, subscriptions, invoices and
events, and the webhook deliveries of those events.

Rules as Stripe documents them (API reference: Events, Subscriptions, webhook signatures):

- Every state change emits an Event (`evt_...`, `type`, `created`, `livemode: false`,
  `api_version`, `request`, `data.object` = a snapshot of the object *after* the change,
  `data.previous_attributes` for updates), whether it came from the API or an admin action.
- Each event is POSTed to the configured webhook URL with `Stripe-Signature:
  t=<now>,v1=<HMAC-SHA256(secret, "t.body")>`; every attempt is signed afresh. Non-2xx or a
  network error is retried with Stripe-like backoff (`RETRY_DELAYS`, realistic seconds scaled
  by `--time-scale`), at most `len(RETRY_DELAYS) + 1` attempts.
- Invoices sit under `parent.subscription_details.subscription` (API >= 2025-03-31.basil).
- `canceled` and `incomplete_expired` subscriptions cannot change any more (400).

Everything here runs on the sandbox's event loop; `send` is the only I/O.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"
RETRY_DELAYS = (60.0, 300.0, 1800.0, 3600.0, 3 * 3600.0)
"""Seconds before attempts 2..6 (Stripe's sandbox mode retries over a few hours)."""
FINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
PERIOD = 30 * 86400

Obj = dict[str, Any]
Sender = Callable[[str, bytes, dict[str, str]], Awaitable[int]]
Scheduler = Callable[[float, Callable[[], None]], object]


class StripeError(Exception):
    """An API error: HTTP status, Stripe error type/code, message, offending parameter."""

    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> Obj:
        error: Obj = {"type": "invalid_request_error", "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe would send."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass
class Delivery:
    event_id: str
    attempts: int = 0
    last_status: int | None = None
    done: bool = False


@dataclass
class StripeState:
    """See the module docstring. `schedule` and `send` are injected by the HTTP module."""

    webhook_url: str | None = None
    webhook_secret: str = ""
    schedule: Scheduler | None = None
    send: Sender | None = None
    customers: dict[str, Obj] = field(default_factory=dict)
    prices: dict[str, Obj] = field(default_factory=dict)
    sessions: dict[str, Obj] = field(default_factory=dict)
    subscriptions: dict[str, Obj] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    events: dict[str, Obj] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- ids, time, persistence ------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(6)}{next(self._counter):06d}"

    @staticmethod
    def now() -> int:
        return int(time.time())

    def to_dict(self) -> Obj:
        keys = ("customers", "prices", "sessions", "subscriptions", "invoices", "events")
        return {k: getattr(self, k) for k in keys}

    def load_dict(self, d: Obj) -> None:
        for key, value in d.items():
            if hasattr(self, key) and isinstance(value, dict):
                setattr(self, key, value)

    # -- lookups ---------------------------------------------------------------------------

    def get(self, kind: str, table: dict[str, Obj], obj_id: str) -> Obj:
        if obj_id not in table:
            raise StripeError(404, f"No such {kind}: '{obj_id}'", "resource_missing", "id")
        return table[obj_id]

    def price(self, price_id: str) -> Obj:
        return self.get("price", self.prices, price_id)

    # -- events ----------------------------------------------------------------------------

    def emit(
        self, type_: str, obj: Obj, previous: Obj | None = None, request: str | None = None
    ) -> Obj:
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event_id = self.new_id("evt")
        event: Obj = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self.webhook_url else 0,
            "request": {"id": request, "idempotency_key": None},
            "type": type_,
        }
        self.events[event_id] = event
        if self.webhook_url and self.schedule is not None:
            self.deliveries[event_id] = Delivery(event_id)
            self.schedule(0.0, lambda: self._start_attempt(event_id))
        return event

    def _start_attempt(self, event_id: str) -> None:
        asyncio.get_running_loop().create_task(self.attempt(event_id))

    async def attempt(self, event_id: str) -> None:
        """One delivery attempt, then schedule the next one if it failed."""
        delivery = self.deliveries[event_id]
        if delivery.done or self.send is None or not self.webhook_url:
            return
        delivery.attempts += 1
        payload = json.dumps(self.events[event_id]).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, self.webhook_secret, self.now()),
        }
        try:
            status = await self.send(self.webhook_url, payload, headers)
        except Exception as exc:  # any network failure counts as a failed attempt
            log.info("webhook %s attempt %d failed: %s", event_id, delivery.attempts, exc)
            status = 0
        delivery.last_status = status
        if 200 <= status < 300:
            delivery.done = True
            self.events[event_id]["pending_webhooks"] = 0
            return
        if delivery.attempts <= len(RETRY_DELAYS) and self.schedule is not None:
            self.schedule(
                RETRY_DELAYS[delivery.attempts - 1], lambda: self._start_attempt(event_id)
            )

    # -- objects ---------------------------------------------------------------------------

    def create_customer(self, params: Obj) -> Obj:
        customer: Obj = {
            "id": self.new_id("cus"),
            "object": "customer",
            "created": self.now(),
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
            "livemode": False,
        }
        self.customers[customer["id"]] = customer
        self.emit("customer.created", customer)
        return customer

    def create_price(self, params: Obj) -> Obj:
        recurring = params.get("recurring") or {"interval": "month"}
        price: Obj = {
            "id": self.new_id("price"),
            "object": "price",
            "active": True,
            "created": self.now(),
            "currency": params.get("currency", "eur"),
            "unit_amount": int(params.get("unit_amount", 0)),
            "product": params.get("product") or self.new_id("prod"),
            "recurring": {"interval": recurring.get("interval", "month"), "interval_count": 1},
            "type": "recurring",
            "metadata": params.get("metadata") or {},
            "livemode": False,
        }
        self.prices[price["id"]] = price
        self.emit("price.created", price)
        return price

    def create_session(self, params: Obj, base_url: str) -> Obj:
        mode = params.get("mode")
        if mode not in ("subscription", "payment", "setup"):
            raise StripeError(400, "Missing required param: mode.", "parameter_missing", "mode")
        items = params.get("line_items") or []
        if not isinstance(items, list) or not items:
            raise StripeError(400, "line_items is required", "parameter_missing", "line_items")
        for item in items:
            self.price(str(item.get("price")))
        customer = params.get("customer")
        if customer:
            self.get("customer", self.customers, str(customer))
        session: Obj = {
            "id": self.new_id("cs_test"),
            "object": "checkout.session",
            "created": self.now(),
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "customer": customer,
            "subscription": None,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "success_url": params.get("success_url"),
            "livemode": False,
        }
        session["url"] = f"{base_url}/checkout/{session['id']}"
        session["_line_items"] = [
            {"price": str(i["price"]), "quantity": int(i.get("quantity", 1))} for i in items
        ]
        session["_trial_days"] = int(
            (params.get("subscription_data") or {}).get("trial_period_days", 0) or 0
        )
        self.sessions[session["id"]] = session
        return session

    def _new_invoice(self, sub: Obj, status: str) -> Obj:
        amount = sum(
            int(i["price"]["unit_amount"]) * int(i["quantity"]) for i in sub["items"]["data"]
        )
        invoice: Obj = {
            "id": self.new_id("in"),
            "object": "invoice",
            "created": self.now(),
            "customer": sub["customer"],
            "status": status,
            "amount_due": amount,
            "amount_paid": amount if status == "paid" else 0,
            "attempt_count": 1,
            "currency": sub["items"]["data"][0]["price"]["currency"],
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": sub["id"], "metadata": {}},
            },
            "livemode": False,
        }
        self.invoices[invoice["id"]] = invoice
        sub["latest_invoice"] = invoice["id"]
        self.emit("invoice.created", invoice)
        self.emit("invoice.finalized", invoice)
        return invoice

    def _set_status(
        self, sub: Obj, status: str, event: str = "customer.subscription.updated"
    ) -> None:
        previous = {"status": sub["status"]}
        if previous["status"] == status and event == "customer.subscription.updated":
            return
        sub["status"] = status
        if status in FINAL_STATUSES:
            sub["canceled_at"] = sub.get("canceled_at") or self.now()
            sub["ended_at"] = self.now()
        self.emit(event, sub, previous)

    def create_subscription(
        self, customer: str, items: list[Obj], metadata: Obj, trial_days: int = 0
    ) -> Obj:
        self.get("customer", self.customers, customer)
        now = self.now()
        sub: Obj = {
            "id": self.new_id("sub"),
            "object": "subscription",
            "created": now,
            "customer": customer,
            "status": "trialing" if trial_days else "active",
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "latest_invoice": None,
            "metadata": metadata,
            "trial_end": now + trial_days * 86400 if trial_days else None,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self.new_id("si"),
                        "object": "subscription_item",
                        "price": copy.deepcopy(self.price(str(i["price"]))),
                        "quantity": int(i.get("quantity", 1)),
                        "current_period_start": now,
                        "current_period_end": now + PERIOD,
                    }
                    for i in items
                ],
            },
            "livemode": False,
        }
        self.subscriptions[sub["id"]] = sub
        invoice = self._new_invoice(sub, "paid")
        self.emit("customer.subscription.created", sub)
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)
        return sub

    def complete_checkout(self, session_id: str) -> Obj:
        """Admin: the customer paid; creates the customer (if needed) and the subscription."""
        session = self.get("checkout session", self.sessions, session_id)
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer open.", "session_expired")
        if not session["customer"]:
            session["customer"] = self.create_customer({})["id"]
        if session["mode"] == "subscription":
            sub = self.create_subscription(
                session["customer"], session["_line_items"], {}, session["_trial_days"]
            )
            session["subscription"] = sub["id"]
        session["status"], session["payment_status"] = "complete", "paid"
        self.emit("checkout.session.completed", self.public(session))
        return session

    def subscription(self, sub_id: str) -> Obj:
        return self.get("subscription", self.subscriptions, sub_id)

    def _mutable(self, sub_id: str) -> Obj:
        sub = self.subscription(sub_id)
        if sub["status"] in FINAL_STATUSES:
            raise StripeError(
                400,
                f"A canceled subscription can only update its metadata (status {sub['status']}).",
            )
        return sub

    def update_subscription(self, sub_id: str, params: Obj) -> Obj:
        sub = self._mutable(sub_id)
        previous: Obj = {}
        if "metadata" in params:
            previous["metadata"] = sub["metadata"]
            sub["metadata"] = {**sub["metadata"], **(params["metadata"] or {})}
        if "cancel_at_period_end" in params:
            previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
            sub["cancel_at_period_end"] = str(params["cancel_at_period_end"]).lower() == "true"
        if previous:
            self.emit("customer.subscription.updated", sub, previous)
        return sub

    def cancel_subscription(self, sub_id: str) -> Obj:
        sub = self._mutable(sub_id)
        self._set_status(sub, "canceled", "customer.subscription.deleted")
        return sub

    def pause_subscription(self, sub_id: str) -> Obj:
        sub = self._mutable(sub_id)
        self._set_status(sub, "paused", "customer.subscription.paused")
        return sub

    def resume_subscription(self, sub_id: str) -> Obj:
        sub = self._mutable(sub_id)
        if sub["status"] != "paused":
            raise StripeError(400, "Only a paused subscription can be resumed.")
        self._set_status(sub, "active", "customer.subscription.resumed")
        return sub

    def fail_payment(self, sub_id: str, final_status: str = "past_due") -> Obj:
        """Admin: a renewal invoice's payment fails; the subscription becomes `final_status`
        (`past_due`, or `unpaid`/`canceled` as if retries were exhausted)."""
        sub = self._mutable(sub_id)
        invoice = self._new_invoice(sub, "open")
        self.emit("invoice.payment_failed", invoice)
        if final_status == "canceled":
            self._set_status(sub, "canceled", "customer.subscription.deleted")
        else:
            self._set_status(sub, final_status)
        return invoice

    def pay_invoice(self, invoice_id: str) -> Obj:
        """Admin or API: the invoice is paid; its subscription returns to `active`."""
        invoice = self.get("invoice", self.invoices, invoice_id)
        if invoice["status"] == "paid":
            raise StripeError(400, "Invoice is already paid", "invoice_already_paid")
        if invoice["status"] not in ("open", "draft"):
            raise StripeError(400, f"Invoice is {invoice['status']}", "invoice_not_payable")
        invoice["status"], invoice["amount_paid"] = "paid", invoice["amount_due"]
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)
        sub_id = invoice["parent"]["subscription_details"]["subscription"]
        sub = self.subscriptions.get(sub_id)
        if sub is not None and sub["status"] in ("past_due", "unpaid", "incomplete"):
            self._set_status(sub, "active")
        return invoice

    @staticmethod
    def public(obj: Obj) -> Obj:
        """The object without the sandbox's private `_` keys."""
        return {k: v for k, v in obj.items() if not k.startswith("_")}
