"""BridgeConfig from the environment, plan files, secret hygiene, and the CLI's refusals."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from aura.bridge.config import BridgeConfig, load_plans
from tests.bridge.conftest import OLD_SECRET, SECRET, TOKEN, Bridge, checkout
from tests.kube import REPO


def test_from_env(tmp_path: Path) -> None:
    plans = tmp_path / "plans.yaml"
    plans.write_text(
        "default: {server: {type: cx32}}\nprices:\n  price_pro: {server: {type: cpx41}}\n"
    )
    tokens = tmp_path / "tokens"
    tokens.write_text("tok_a\ntok_b\n")
    config = BridgeConfig.from_env(
        {
            "STRIPE_WEBHOOK_SECRET": f"{SECRET}, {OLD_SECRET}",
            "STRIPE_API_KEY": "sk_live_" + "abcdefgh12345678",
            "STRIPE_API_BASE": "http://127.0.0.1:1/stripe",
            "AURA_API_TOKENS": "tok_c",
            "AURA_API_TOKENS_FILE": str(tokens),
            "AURA_BRIDGE_PLANS": str(plans),
            "AURA_BRIDGE_NAMESPACE": "customers",
            "AURA_BRIDGE_PAST_DUE_GRACE": "86400",
        },
        reread_subscription=False,
    )
    assert config.webhook_secrets == (SECRET, OLD_SECRET)
    assert config.api_tokens == frozenset({"tok_a", "tok_b", "tok_c"})
    assert config.livemode is True  # an sk_live_ key
    assert config.default_namespace == "customers"
    assert config.past_due_grace == 86400
    assert config.reread_subscription is False
    assert config.plans.for_prices(["price_x", "price_pro"]).server.type == "cpx41"
    assert config.plans.for_prices([]).server.type == "cx32"
    shown = repr(config)
    for secret in (SECRET, OLD_SECRET, "sk_live_" + "abcdefgh12345678", "tok_a"):
        assert secret not in shown


def test_inline_plans_and_bad_plans() -> None:
    book = load_plans('{"prices": {"price_a": {"runtime": {"openclawVersion": "2026.4.0"}}}}')
    assert book.prices["price_a"].runtime.openclaw_version == "2026.4.0"
    with pytest.raises(ValueError, match="type"):
        load_plans('{"default": {"server": {"type": "NOT A TYPE"}}}')


def test_cli_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(REPO / ".venv/bin/aura"), "bridge", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode != 0
    assert "STRIPE_WEBHOOK_SECRET is not set" in proc.stderr


@pytest.mark.integration
async def test_no_secret_reaches_the_logs(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await checkout(bridge, "quiet")
    await bridge.http.get(
        "/v1/agents", params={"customer": "cus_1"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    await bridge.http.post(
        "/v1/stripe/webhook", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}
    )
    text = caplog.text
    assert "quiet" in text  # the log is there...
    for secret in (SECRET, OLD_SECRET, TOKEN, "sk_test_fake"):
        assert secret not in text  # ...and says nothing secret
