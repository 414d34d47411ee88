"""The sandbox's Stripe world: customers, prices, checkout sessions, subscriptions, invoices and
events, and the rules that change them.

Rules as Stripe documents them (API reference: Events, Subscriptions, Checkout Sessions):

- Every state change emits an Event (`evt_...`, `type`, `created`, `livemode: false`,
  `api_version`, `request`, `data.object` = a snapshot of the object *after* the change,
  `data.previous_attributes` for updates), whether it came from the API or an admin action.
  Events are delivered to the webhook URL by `stripe_webhooks`.
- Objects carry every key of the real ones (`stripe_objects` builds them).
- A Checkout Session copies `subscription_data.metadata` and `trial_period_days` onto the
  subscription it creates; it expires at `expires_at` (24 hours by default) and can no longer be
  completed then.
- Invoices sit under `parent.subscription_details.subscription` (API >= 2025-03-31.basil).
- `canceled` and `incomplete_expired` subscriptions cannot change any more (400).

Everything here runs on the sandbox's event loop; `send` is the only I/O.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aura_sandbox import stripe_billing
from aura_sandbox import stripe_objects as objects
from aura_sandbox.stripe_errors import StripeError
from aura_sandbox.stripe_lists import list_subscriptions
from aura_sandbox.stripe_webhooks import Delivery, Sender

API_VERSION = "2026-10-28.endive"
FINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
PERIOD = 30 * 86400

Obj = dict[str, Any]
Scheduler = Callable[[float, Callable[[], None]], object]


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
        event = self.events[event_id]
        retry = await delivery.attempt(
            event, self.webhook_url, self.webhook_secret, self.send, self.now()
        )
        if delivery.done:
            event["pending_webhooks"] = 0
        elif retry is not None and self.schedule is not None:
            self.schedule(retry, lambda: self._start_attempt(event_id))

    # -- objects ---------------------------------------------------------------------------

    def create_customer(self, params: Obj) -> Obj:
        prefix = secrets.token_hex(4).upper()
        customer = objects.customer(self.new_id("cus"), self.now(), params, prefix)
        self.customers[customer["id"]] = customer
        self.emit("customer.created", customer)
        return customer

    def create_price(self, params: Obj) -> Obj:
        product = str(params.get("product") or self.new_id("prod"))
        price = objects.price(self.new_id("price"), self.now(), params, product)
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
        prices = [self.price(str(item.get("price"))) for item in items]
        if params.get("customer"):
            self.get("customer", self.customers, str(params["customer"]))
        lines = [
            {"price": p["id"], "quantity": int(i.get("quantity", 1))}
            for p, i in zip(prices, items, strict=True)
        ]
        amount = sum(
            int(p["unit_amount"]) * line["quantity"] for p, line in zip(prices, lines, strict=True)
        )
        session_id = self.new_id("cs_test")
        session = objects.checkout_session(
            session_id,
            self.now(),
            params | {"currency": prices[0]["currency"]},
            f"{base_url}/checkout/{session_id}",
            amount,
        )
        subscription_data = params.get("subscription_data") or {}
        session["_line_items"] = lines
        session["_trial_days"] = int(subscription_data.get("trial_period_days", 0) or 0)
        session["_subscription_metadata"] = dict(subscription_data.get("metadata") or {})
        self.sessions[session["id"]] = session
        return session

    def _new_invoice(self, sub: Obj, reason: str) -> Obj:
        """A finalized, open invoice of `sub` (events `invoice.created`, `.finalized`)."""
        invoice_id = self.new_id("in")
        lines = [
            stripe_billing.invoice_line(self.new_id("il"), invoice_id, sub, item)
            for item in sub["items"]["data"]
        ]
        customer = self.customers.get(sub["customer"], {})
        number = f"{customer.get('invoice_prefix', 'SANDBOX')}-{len(self.invoices) + 1:04d}"
        invoice = stripe_billing.invoice(
            invoice_id, self.now(), sub, customer, lines, reason, number
        )
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
        sub_id = self.new_id("sub")
        sub_items = [
            stripe_billing.subscription_item(
                self.new_id("si"),
                sub_id,
                now,
                copy.deepcopy(self.price(str(i["price"]))),
                int(i.get("quantity", 1)),
                PERIOD,
            )
            for i in items
        ]
        sub = stripe_billing.subscription(sub_id, now, customer, sub_items, metadata, trial_days)
        self.subscriptions[sub["id"]] = sub
        invoice = self._new_invoice(sub, "subscription_create")
        stripe_billing.mark_paid(invoice, now)
        self.emit("customer.subscription.created", sub)
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)
        return sub

    def list_subscriptions(self, params: Obj) -> Obj:
        """`GET /v1/subscriptions` with Stripe's filters (see `stripe_lists`)."""
        return list_subscriptions(self.subscriptions.values(), params, self.public)

    def complete_checkout(self, session_id: str) -> Obj:
        """Admin: the customer paid; creates the customer (if needed) and the subscription."""
        session = self.get("checkout session", self.sessions, session_id)
        if session["status"] == "open" and self.now() >= session["expires_at"]:
            session["status"] = "expired"
            self.emit("checkout.session.expired", self.public(session))
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer open.", "session_expired")
        if not session["customer"]:
            session["customer"] = self.create_customer({"email": session["customer_email"]})["id"]
        if session["mode"] == "subscription":
            sub = self.create_subscription(
                session["customer"],
                session["_line_items"],
                dict(session.get("_subscription_metadata") or {}),
                session["_trial_days"],
            )
            session["subscription"] = sub["id"]
        session["customer_details"] = objects.customer_details(self.customers[session["customer"]])
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
            previous["cancel_at"] = sub["cancel_at"]
            at_end = str(params["cancel_at_period_end"]).lower() == "true"
            sub["cancel_at_period_end"] = at_end
            period_end = sub["items"]["data"][0]["current_period_end"]
            sub["cancel_at"] = period_end if at_end else None
        if previous:
            self.emit("customer.subscription.updated", sub, previous)
        return sub

    def cancel_subscription(self, sub_id: str) -> Obj:
        sub = self._mutable(sub_id)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
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
        invoice = self._new_invoice(sub, "subscription_cycle")
        self.emit("invoice.payment_failed", invoice)
        if final_status == "canceled":
            sub["cancellation_details"]["reason"] = "payment_failed"
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
        stripe_billing.mark_paid(invoice, self.now())
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
