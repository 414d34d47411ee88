"""Secrets never reach the log stream, whatever way they are handed to the logger."""

from __future__ import annotations

import io
import json
import logging

import pytest

from aura.logs import REDACTED, RedactingFilter, configure_logging, redact

SECRETS = [
    "tskey-auth-" + "kAbCdEf1CNTRL-0123456789abcdef",
    "tskey-client-" + "kXyZ123CNTRL-secretsecretsecret",
    "sk_test_51HzAbCdEfGhIjKlMnOp",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    # Assembled so the repository holds no literal private-key block.
    "-----BEGIN OPENSSH "
    + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_redact_masks_each_credential_shape(secret: str) -> None:
    out = redact(f"before {secret} after")
    assert secret not in out
    assert out.startswith("before ") and out.endswith(" after")
    assert REDACTED in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [REDACTED]"),
        ("token=ZXhhbXBsZXRva2Vu done", "token=[REDACTED] done"),
        ('{"api_key": "k3y-v4lue-123"}', '{"api_key": "[REDACTED]"}'),
    ],
)
def test_redact_keeps_the_label(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_ordinary_words_survive() -> None:
    text = "server 4711 is starting (2 of 3 checks passed); token bucket refilled"
    assert redact(text) == text


def test_json_log_lines_carry_extras_and_no_secret() -> None:
    stream = io.StringIO()
    configure_logging(json_format=True)
    handler = logging.getLogger().handlers[-1]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("aura.test")
    key = SECRETS[0]
    log.info("minted %s", key, extra={"agent": "ns/a", "step": "ensure_auth_key", "auth": key})
    try:
        raise RuntimeError(f"create failed for {key}")
    except RuntimeError:
        log.exception("step failed", extra={"agent": "ns/a"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert key not in stream.getvalue()
    assert lines[0]["agent"] == "ns/a" and lines[0]["step"] == "ensure_auth_key"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "aura.test"
    assert "RuntimeError" in lines[1]["exc_info"]


def test_filter_scrubs_nested_extra_values() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.payload = {"secret": {"key": SECRETS[2]}, "ok": ["fine"]}
    RedactingFilter().filter(record)
    assert record.payload == {"secret": {"key": REDACTED}, "ok": ["fine"]}


def test_filter_drops_extras_that_are_not_plain_data() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.settings = object()
    record.k8s_ref = {"kind": "Agent", "name": "a"}
    RedactingFilter().filter(record)
    assert not hasattr(record, "settings")
    assert record.k8s_ref == {"kind": "Agent", "name": "a"}
