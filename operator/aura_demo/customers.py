"""The demo's customers and their bank: Stripe calls (the official client, pointed at the
sandbox) and the sandbox's admin actions that play the card network."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import httpx
import stripe


@dataclass
class Customer:
    """One customer with one subscription to one always-on Agent."""

    label: str
    namespace: str
    agent: str = ""
    subscription: str = ""
    hibernate_after: str = ""
    """Metadata `aura_hibernate_after` of this customer's price (the dunning grace); "" none."""

    def __post_init__(self) -> None:
        self.agent = self.agent or f"{self.label.lower()}-{secrets.token_hex(2)}"


class Bank:
    """Checkout, failed and paid invoices, cancellation: what a customer and Stripe do."""

    def __init__(self, sc: stripe.StripeClient, admin: httpx.AsyncClient) -> None:
        self.sc, self.admin = sc, admin

    async def checkout(self, customer: Customer) -> None:
        """Create the customer and a subscription through Checkout; the bridge hears of it."""
        created = await asyncio.to_thread(
            self.sc.customers.create,
            params={"email": f"ops@{customer.label.lower()}.example", "name": customer.label},
        )
        price = await asyncio.to_thread(
            self.sc.prices.create,
            params={
                "currency": "eur",
                "unit_amount": 1900,
                "recurring": {"interval": "month"},
                "product_data": {"name": "Always-on agent"},
                "metadata": {"aura_hibernate_after": customer.hibernate_after}
                if customer.hibernate_after
                else {},
            },
        )
        session = await asyncio.to_thread(
            self.sc.checkout.sessions.create,
            params={
                "mode": "subscription",
                "customer": created.id,
                "line_items": [{"price": price.id, "quantity": 1}],
                "metadata": {"agent_name": customer.agent, "agent_namespace": customer.namespace},
                "success_url": f"https://{customer.label.lower()}.example/welcome",
            },
        )
        response = await self.admin.post(f"/stripe/checkout/{session.id}/complete")
        response.raise_for_status()
        customer.subscription = response.json()["subscription"]

    async def fail_payment(self, customer: Customer) -> None:
        response = await self.admin.post(
            f"/stripe/subscriptions/{customer.subscription}/fail_payment"
        )
        response.raise_for_status()

    async def pay_invoice(self, customer: Customer) -> None:
        sub = await asyncio.to_thread(self.sc.subscriptions.retrieve, customer.subscription)
        invoice = sub.latest_invoice
        invoice_id = invoice if isinstance(invoice, str) else invoice.id  # type: ignore[union-attr]
        response = await self.admin.post(f"/stripe/invoices/{invoice_id}/pay")
        response.raise_for_status()

    async def cancel(self, customer: Customer) -> None:
        await asyncio.to_thread(self.sc.subscriptions.cancel, customer.subscription)
