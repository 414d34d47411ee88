"""Fixtures for the sandbox tests: an in-process sandbox per test, an `hcloud` client and a
raw HTTP session whose every response is validated against the Hetzner OpenAPI spec.

The number of validated responses is printed in the terminal summary, so a run shows how much
of the traffic the spec actually checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hcloud
import pytest
import requests

from aura_sandbox.harness import Sandbox
from tests.sandbox.openapi import HETZNER_SPEC_FILE, SPECS_ENV, OpenApiValidator, optional_spec

TIME_SCALE = 0.01
"""A 30 s boot takes 0.3 s; the whole suite stays well under a minute."""

_validator: OpenApiValidator | None = None


def hetzner_validator() -> OpenApiValidator:
    global _validator
    if _validator is None:
        _validator = OpenApiValidator(optional_spec(HETZNER_SPEC_FILE))
    return _validator


@pytest.fixture
def validator() -> Iterator[OpenApiValidator]:
    """The session's spec validator; the test fails if any response of it mismatched."""
    v = hetzner_validator()
    before = len(v.failures)
    yield v
    assert v.failures[before:] == [], "responses did not match the OpenAPI spec"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(time_scale=TIME_SCALE) as sb:
        yield sb


def validated_client(sb: Sandbox, validator: OpenApiValidator, **kwargs: Any) -> hcloud.Client:
    """`sb.ready.hcloud()` whose responses are all validated, with retry sleeps cut to 10 ms.

    The retry *policy* (which codes are retried, how many times) stays hcloud's own; only its
    backoff of 1-60 s is shortened so retry tests finish quickly.
    """
    client = sb.ready.hcloud(**kwargs)
    client._client._session.hooks["response"].append(validator.requests_hook)
    client._client._retry_interval_func = lambda retries: 0.01
    return client


@pytest.fixture
def client(sandbox: Sandbox, validator: OpenApiValidator) -> hcloud.Client:
    return validated_client(sandbox, validator)


class Http:
    """Raw HTTP against the sandbox's `/v1`, validated like the client."""

    def __init__(self, sb: Sandbox, validator: OpenApiValidator) -> None:
        self.base = sb.ready.hetzner_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sb.ready.hetzner_token}"
        self.session.hooks["response"].append(validator.requests_hook)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def http(sandbox: Sandbox, validator: OpenApiValidator) -> Http:
    return Http(sandbox, validator)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _validator is not None and not _validator.available:
        terminalreporter.write_line(
            f"Hetzner OpenAPI: not run ({SPECS_ENV} unset): "
            f"{_validator.unchecked} response bodies were not validated"
        )
    elif _validator is not None:
        terminalreporter.write_line(
            f"Hetzner OpenAPI: {_validator.validated} response bodies validated "
            f"({len(_validator.per_operation)} operation/status pairs), "
            f"{_validator.skipped} not described by the spec, "
            f"{len(_validator.failures)} mismatches"
        )


FAST = 0.004
"""For the image, clock and gateway tests: boot 60 s -> 0.24 s; a 60 s snapshot -> 0.24 s."""


@pytest.fixture
def fast() -> Iterator[Sandbox]:
    """A sandbox at `FAST` time scale."""
    with Sandbox(time_scale=FAST) as sb:
        yield sb


@pytest.fixture
def fclient(fast: Sandbox, validator: OpenApiValidator) -> hcloud.Client:
    """A validated hcloud client of the `fast` sandbox that polls actions every 10 ms."""
    return validated_client(fast, validator, poll_interval=0.01)


def admin(sb: Sandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    """One request to the sandbox's admin API (`path` under `/admin`)."""
    return requests.request(method, sb.ready.admin_url + path, timeout=30, **kwargs)
