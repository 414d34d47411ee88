"""`HcloudAdapter`'s error classification: every code it knows, transport errors, odd bodies."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hcloud import APIException

from aura.controller import errors
from aura.controller.clients.hetzner import HcloudAdapter
from aura.controller.clients.ratelimit import RateLimiter

SOURCE = "HCLOUD_TOKEN (Secret aura-system/creds)"


def _adapter() -> HcloudAdapter:
    return HcloudAdapter(
        token="t" * 64,
        endpoint="http://hetzner.invalid/v1",
        limiter=RateLimiter(max_backoff=1),
        token_source=SOURCE,
    )


# (code as hcloud reports it, expected class, expected reason for Permanent errors)
CODES: list[tuple[Any, type[errors.AuraError], str | None]] = [
    ("unauthorized", errors.InvalidCredentials, None),
    (401, errors.InvalidCredentials, None),
    ("rate_limit_exceeded", errors.RateLimited, None),
    (429, errors.RateLimited, None),
    ("locked", errors.Locked, None),
    (423, errors.Locked, None),
    ("uniqueness_error", errors.AlreadyExists, None),
    ("not_found", errors.NotFound, None),
    (404, errors.NotFound, None),
    ("invalid_input", errors.InvalidRequest, "InvalidInput"),
    ("json_error", errors.InvalidRequest, "InvalidInput"),
    ("resource_limit_exceeded", errors.InvalidRequest, "ResourceLimitExceeded"),
    ("resource_unavailable", errors.InvalidRequest, "ResourceUnavailable"),
    ("placement_error", errors.InvalidRequest, "PlacementError"),
    ("forbidden", errors.InvalidRequest, "Forbidden"),
    ("conflict", errors.Retryable, None),
    ("timeout", errors.Retryable, None),
    ("bad_gateway", errors.Retryable, None),
    ("server_error", errors.Retryable, None),
    ("unavailable", errors.Retryable, None),
    ("maintenance", errors.Retryable, None),
    ("service_error", errors.Retryable, None),
    ("action_failed", errors.Retryable, None),
    (500, errors.Retryable, None),
    (502, errors.Retryable, None),
    (503, errors.Retryable, None),
    # Odd bodies: an unknown 4xx is the request's fault, anything unrecognised is transient.
    (400, errors.InvalidRequest, "InvalidRequest"),
    (418, errors.InvalidRequest, "InvalidRequest"),
    ("some_future_code", errors.Retryable, None),
    (None, errors.Retryable, None),
    ("", errors.Retryable, None),
]


@pytest.mark.parametrize(("code", "kind", "reason"), CODES, ids=[repr(c[0]) for c in CODES])
def test_codes_are_classified(code: Any, kind: type[errors.AuraError], reason: str | None) -> None:
    classified = _adapter()._classify("create server x", APIException(code, "msg", None))
    assert type(classified) is kind
    if reason is not None:
        assert isinstance(classified, errors.Permanent) and classified.reason == reason
    if kind is errors.InvalidCredentials:
        assert SOURCE in str(classified)  # names where the token came from
    else:
        assert str(classified).startswith("create server x: ")


def test_rate_limit_carries_the_limiters_backoff() -> None:
    adapter = _adapter()
    classified = adapter._classify("list servers", APIException("rate_limit_exceeded", "", None))
    assert isinstance(classified, errors.RateLimited)
    assert classified.retry_after == adapter._limiter.backoff_remaining()


def test_odd_message_does_not_break_classification() -> None:
    classified = _adapter()._classify("get server 1", APIException("not_found", None, {"x": 1}))
    assert isinstance(classified, errors.NotFound)


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectionError("dial tcp: token=secret"),
        requests.exceptions.Timeout("read timed out token=secret"),
        requests.exceptions.ChunkedEncodingError("broken token=secret"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_transport_errors_are_retryable_and_name_only_their_type(exc: Exception) -> None:
    def fails() -> None:
        raise exc

    with pytest.raises(errors.Retryable) as raised:
        await _adapter()._call("power on 7", fails)
    assert str(raised.value) == f"power on 7: {type(exc).__name__}"
    assert "secret" not in str(raised.value)


async def test_api_exceptions_leave_call_classified() -> None:
    def fails() -> None:
        raise APIException("uniqueness_error", "name is already used", None)

    with pytest.raises(errors.AlreadyExists):
        await _adapter()._call("create server x", fails)
