"""`KubeClients` classifies the apiserver's answers into the error tree (table-driven)."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from aura.controller import errors
from aura.controller.clients.kube import RBAC_SOURCE, classify

STATUSES: list[tuple[int, type[errors.AuraError]]] = [
    (404, errors.NotFound),
    (409, errors.AlreadyExists),
    (401, errors.InvalidCredentials),
    (403, errors.InvalidCredentials),
    (429, errors.RateLimited),
    (400, errors.InvalidRequest),
    (422, errors.InvalidRequest),
    (408, errors.Retryable),
    (500, errors.Retryable),
    (503, errors.Retryable),
    (0, errors.Retryable),  # no status at all: a transport-level failure
]


@pytest.mark.parametrize(("status", "kind"), STATUSES, ids=[str(s) for s, _ in STATUSES])
def test_statuses_are_classified(status: int, kind: type[errors.AuraError]) -> None:
    classified = classify("read Secret ns/x", ApiException(status=status, reason="Nope"))
    assert type(classified) is kind
    if kind is errors.InvalidCredentials:
        assert RBAC_SOURCE in str(classified)
    else:
        assert str(classified) == f"read Secret ns/x: Nope ({status})"


def test_too_many_requests_honours_retry_after() -> None:
    exc = ApiException(status=429, reason="Too Many Requests")
    exc.headers = {"Retry-After": "7"}
    classified = classify("create Secret ns/x", exc)
    assert isinstance(classified, errors.RateLimited) and classified.retry_after == 7.0


def test_the_body_never_reaches_the_message() -> None:
    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = '{"message": "data.token: sk-live-' + 'leaked"}'
    assert "leaked" not in str(classify("create Secret ns/x", exc))
