"""The sandbox's Stripe objects have the shapes of Stripe's own: every Stripe call the project
makes is made with the official `stripe` client against the sandbox and against stripe-mock
(Stripe's mock, built from the Go module proxy by `hack/stripe-mock.sh`), and the answers must
have the same keys, at every depth, with values of the same JSON types.

Values are not compared (stripe-mock answers fixtures). A `null` on either side matches any
type: stripe-mock's fixtures fill nullable objects that a fresh subscription leaves `null`.
`metadata` maps hold user data and are not compared; lists compare their first elements. The
calls, from `operator/aura/bridge/stripe_api.py`, `operator/aura_demo/scenario.py`, `hack/bench`
and the tests: customers.create, prices.create, checkout.sessions.create and .retrieve,
subscriptions.retrieve, .update, .list, .pause, .resume, .cancel, invoices.retrieve and .pay,
events.retrieve (and the subscription inside an event).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from aura_sandbox.harness import Sandbox

REPO = Path(__file__).resolve().parents[2]
MOCK_KEY = "sk_test_123"
UNCOMPARED = frozenset({"metadata", "previous_attributes"})

Obj = dict[str, Any]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stripe_mock() -> Iterator[str]:
    """stripe-mock on a free loopback port; its base URL."""
    built = subprocess.run(
        [str(REPO / "hack" / "stripe-mock.sh"), "path"], capture_output=True, text=True
    )
    assert built.returncode == 0, f"hack/stripe-mock.sh path failed:\n{built.stderr[-4000:]}"
    port = _free_port()
    # stripe-mock also serves HTTPS, on 12112 unless told otherwise: keep it off shared ports.
    addresses = ["-http-addr", f"127.0.0.1:{port}", "-https-addr", f"127.0.0.1:{_free_port()}"]
    proc = subprocess.Popen(
        [built.stdout.strip(), *addresses],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/v1/customers", auth=(MOCK_KEY, ""), timeout=1.0)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"stripe-mock did not start: {err[-2000:]}") from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@dataclass
class Side:
    """One Stripe (the sandbox, or stripe-mock when `admin` is None) and the ids its earlier
    calls returned."""

    client: stripe.StripeClient
    admin: str | None
    ids: dict[str, str]


def raw(obj: stripe.StripeObject) -> Obj:
    """The JSON object exactly as the server sent it."""
    response = obj.last_response
    assert response is not None
    data: Obj = response.data
    return data


def shape_diff(sandbox: Any, mock: Any, path: str = "") -> list[str]:
    """Where the sandbox's value differs from stripe-mock's in keys or JSON types."""
    if sandbox is None or mock is None:
        return []
    if isinstance(sandbox, dict) and isinstance(mock, dict):
        diffs = [f"{path}.{k}: missing (stripe-mock has it)" for k in mock.keys() - sandbox.keys()]
        diffs += [f"{path}.{k}: not in stripe-mock" for k in sandbox.keys() - mock.keys()]
        for key in sandbox.keys() & mock.keys():
            if key not in UNCOMPARED:
                diffs += shape_diff(sandbox[key], mock[key], f"{path}.{key}")
        return sorted(diffs)
    if isinstance(sandbox, list) and isinstance(mock, list):
        if sandbox and mock:
            return shape_diff(sandbox[0], mock[0], f"{path}[0]")
        return []
    if _json_type(sandbox) != _json_type(mock):
        return [f"{path}: sandbox {_json_type(sandbox)}, stripe-mock {_json_type(mock)}"]
    return []


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), type(value).__name__)


Call = Callable[[Side], Obj]
CALLS: dict[str, tuple[Call, Call | None]] = {}
"""Call name -> (the call, what stripe-mock is asked instead when it lacks the route). In
definition order, which is call order: later calls use ids earlier ones returned."""


def call(name: str, on_mock: Call | None = None) -> Callable[[Call], Call]:
    def register(fn: Call) -> Call:
        CALLS[name] = (fn, on_mock)
        return fn

    return register


def _mock_subscription(s: Side) -> Obj:
    """stripe-mock predates `POST /v1/subscriptions/{id}/pause`; both Stripe and the sandbox
    answer it with a subscription, so the sandbox's answer is held to that shape."""
    return raw(s.client.v1.subscriptions.retrieve("sub_shape"))


@call("customers.create")
def _customer(s: Side) -> Obj:
    customer = s.client.v1.customers.create({"email": "shape@example.com", "name": "Shape"})
    s.ids["customer"] = customer.id
    return raw(customer)


@call("prices.create")
def _price(s: Side) -> Obj:
    price = s.client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 2900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Agent"},
        }
    )
    s.ids["price"] = price.id
    return raw(price)


@call("checkout.sessions.create")
def _session(s: Side) -> Obj:
    session = s.client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": s.ids["customer"],
            "line_items": [{"price": s.ids["price"], "quantity": 1}],
            "metadata": {"agent_name": "shape"},
            "subscription_data": {"metadata": {"agent_name": "shape"}},
            "success_url": "https://example.com/ok",
            "cancel_url": "https://example.com/cancel",
        }
    )
    s.ids["session"] = session.id
    return raw(session)


@call("checkout.sessions.retrieve")
def _session_retrieve(s: Side) -> Obj:
    return raw(s.client.v1.checkout.sessions.retrieve(s.ids["session"]))


def _subscription_id(s: Side) -> str:
    """The sandbox completes the session (the customer pays); stripe-mock answers any id."""
    if "subscription" not in s.ids:
        if s.admin is not None:
            done = httpx.post(f"{s.admin}/stripe/checkout/{s.ids['session']}/complete")
            assert done.status_code == 200, done.text
            s.ids["subscription"] = done.json()["subscription"]
        else:
            s.ids["subscription"] = "sub_shape"
    return s.ids["subscription"]


def _subscription_call(method: str) -> Call:
    """`subscriptions.<method>(id)` on the side's subscription."""

    def on(s: Side) -> Obj:
        return raw(getattr(s.client.v1.subscriptions, method)(_subscription_id(s)))

    return on


call("subscriptions.retrieve")(_subscription_call("retrieve"))


@call("subscriptions.update")
def _sub_update(s: Side) -> Obj:
    return raw(
        s.client.v1.subscriptions.update(
            _subscription_id(s), {"cancel_at_period_end": True, "metadata": {"k": "v"}}
        )
    )


@call("subscriptions.list")
def _sub_list(s: Side) -> Obj:
    return raw(s.client.v1.subscriptions.list({"customer": s.ids["customer"], "status": "all"}))


@call("invoices.retrieve")
def _invoice_retrieve(s: Side) -> Obj:
    sub = s.client.v1.subscriptions.retrieve(_subscription_id(s))
    invoice_id = sub.latest_invoice if isinstance(sub.latest_invoice, str) else "in_shape"
    s.ids["invoice"] = invoice_id
    return raw(s.client.v1.invoices.retrieve(invoice_id))


@call("events.retrieve")
def _event_retrieve(s: Side) -> Obj:
    event = raw(s.client.v1.events.retrieve(_updated_event_id(s)))
    # stripe-mock's event fixture wraps a plan; the object inside is compared on its own below.
    event["data"] = {"object": None}
    return event


def _updated_event_id(s: Side) -> str:
    if s.admin is None:
        return "evt_shape"
    return str(s.client.v1.events.list({"type": "customer.subscription.updated"}).data[0].id)


@call("event data.object (subscription)")
def _event_object(s: Side) -> Obj:
    if s.admin is None:
        return raw(s.client.v1.subscriptions.retrieve("sub_shape"))
    data: Obj = raw(s.client.v1.events.retrieve(_updated_event_id(s)))["data"]["object"]
    return data


@call("invoices.pay")
def _invoice_pay(s: Side) -> Obj:
    """A renewal fails (sandbox admin: the bank declines), then the invoice is paid."""
    invoice_id = "in_shape"
    if s.admin is not None:
        failed = httpx.post(f"{s.admin}/stripe/subscriptions/{_subscription_id(s)}/fail_payment")
        assert failed.status_code == 200, failed.text
        invoice_id = failed.json()["id"]
    return raw(s.client.v1.invoices.pay(invoice_id))


call("subscriptions.pause", on_mock=_mock_subscription)(_subscription_call("pause"))
call("subscriptions.resume")(_subscription_call("resume"))
call("subscriptions.cancel")(_subscription_call("cancel"))


Answer = tuple[Obj, Obj] | stripe.StripeError


@pytest.fixture(scope="module")
def answers(sandbox: Sandbox, stripe_mock: str) -> dict[str, Answer]:
    """Every call of `CALLS`, in order, on both sides: name -> (sandbox's, stripe-mock's), or
    the error one side raised (so one failing call does not hide the others)."""
    ours = Side(
        stripe.StripeClient(
            sandbox.info["stripe_api_key"], base_addresses={"api": sandbox.info["stripe_url"]}
        ),
        sandbox.ready.admin_url,
        {},
    )
    theirs = Side(stripe.StripeClient(MOCK_KEY, base_addresses={"api": stripe_mock}), None, {})
    result: dict[str, Answer] = {}
    for name, (on_ours, on_mock) in CALLS.items():
        try:
            result[name] = (on_ours(ours), (on_mock or on_ours)(theirs))
        except stripe.StripeError as exc:
            result[name] = exc
    return result


@pytest.mark.parametrize("name", list(CALLS))
def test_object_shapes_match_stripe_mock(answers: dict[str, Answer], name: str) -> None:
    answer = answers[name]
    if isinstance(answer, Exception):
        raise answer
    sandbox_obj, mock_obj = answer
    assert sandbox_obj.get("object") == mock_obj.get("object")
    assert shape_diff(sandbox_obj, mock_obj, name) == []


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/nope"), ("PUT", "/v1/customers"), ("PATCH", "/v1/events")]
)
def test_unknown_routes_answer_like_stripe_mock(
    sandbox: Sandbox, stripe_mock: str, method: str, path: str
) -> None:
    ours = httpx.request(
        method,
        sandbox.info["stripe_url"] + path,
        headers={"Authorization": f"Bearer {sandbox.info['stripe_api_key']}"},
    )
    theirs = httpx.request(method, stripe_mock + path, auth=(MOCK_KEY, ""))
    assert (ours.status_code, ours.headers["content-type"].split(";")[0]) == (
        theirs.status_code,
        theirs.headers["content-type"].split(";")[0],
    )
    assert ours.json() == theirs.json()


def test_official_client_raises_invalid_request_for_unknown_routes(sandbox: Sandbox) -> None:
    client = stripe.StripeClient(
        sandbox.info["stripe_api_key"], base_addresses={"api": sandbox.info["stripe_url"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.raw_request("get", "/v1/unknown_things")
    assert err.value.http_status == 404
    assert "Unrecognized request URL (GET: /v1/unknown_things)" in str(err.value)


def test_shape_diff_reports_keys_and_types() -> None:
    ours = {"a": 1, "b": {"c": "x", "extra": None}, "l": [{"n": True}], "metadata": {"u": 1}}
    theirs = {"a": "1", "b": {"c": "y", "d": None}, "l": [{"n": 2}], "z": None, "metadata": {}}
    assert shape_diff(ours, theirs) == [
        ".a: sandbox number, stripe-mock string",
        ".b.d: missing (stripe-mock has it)",
        ".b.extra: not in stripe-mock",
        ".l[0].n: sandbox boolean, stripe-mock number",
        ".z: missing (stripe-mock has it)",
    ]
