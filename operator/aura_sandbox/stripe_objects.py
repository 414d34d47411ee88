"""The shapes of the Stripe objects the sandbox serves: every key the real API returns.

Clients written against Stripe read fields the sandbox itself never changes (`expires_at`,
`collection_method`, `items.url`, ...), so each builder returns the complete key set of its
object as the API version `stripe_state.API_VERSION` renders it, with the values a fresh test-mode
object of a plain card subscription has: features the sandbox does not simulate (tax, discounts,
shipping, Connect) are `null`, empty or off. The key sets are checked against stripe-mock, Stripe's
own mock, by `tests/sandbox/test_stripe_conformance.py`.

Builders are pure: ids and timestamps come from the caller, nothing is stored here.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

DAY = 86400
SESSION_LIFETIME = DAY
"""Checkout Sessions expire 24 hours after creation unless `expires_at` says otherwise."""


def customer(cid: str, created: int, params: Obj, invoice_prefix: str) -> Obj:
    return {
        "id": cid,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description"),
        "discount": None,
        "email": params.get("email"),
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": params.get("metadata") or {},
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": params.get("phone"),
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def price(pid: str, created: int, params: Obj, product: str) -> Obj:
    recurring = params.get("recurring") or {"interval": "month"}
    amount = int(params.get("unit_amount", 0))
    return {
        "id": pid,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": params.get("currency", "eur"),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": params.get("lookup_key"),
        "metadata": params.get("metadata") or {},
        "nickname": params.get("nickname"),
        "product": product,
        "recurring": {
            "interval": recurring.get("interval", "month"),
            "interval_count": int(recurring.get("interval_count", 1)),
            "meter": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }


def checkout_session(sid: str, created: int, params: Obj, url: str, amount: int) -> Obj:
    """An open session; `amount` is the sum of its line items, `url` the hosted page."""
    customer_id = params.get("customer")
    expires_at = int(params.get("expires_at") or created + SESSION_LIFETIME)
    return {
        "id": sid,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": params.get("currency"),
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": None if customer_id else "always",
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.get("locale"),
        "managed_payments": {"enabled": False},
        "metadata": params.get("metadata") or {},
        "mode": params.get("mode"),
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url,
        "wallet_options": None,
    }


def customer_details(cust: Obj) -> Obj:
    """`checkout.session.customer_details` once the customer has paid."""
    return {
        "address": cust.get("address"),
        "business_name": None,
        "email": cust.get("email"),
        "individual_name": None,
        "name": cust.get("name"),
        "phone": cust.get("phone"),
        "tax_exempt": "none",
        "tax_ids": [],
    }


def listing(url: str, data: list[Obj], has_more: bool = False) -> Obj:
    """A list envelope as every Stripe list endpoint returns it."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
