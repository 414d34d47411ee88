"""Every failure the operator knows, classified once at the client boundary.

    AuraError
    ├── Retryable            transient: 5xx, timeouts, connection errors, `locked`, `conflict`
    │   ├── RateLimited      429 / `rate_limit_exceeded`; `retry_after` says when to come back
    │   └── Locked           423 `locked`: another action holds the server; wait for it
    ├── Permanent            retrying cannot help; the user must change the spec
    │   └── InvalidRequest   `invalid_input`, `resource_limit_exceeded`, unknown type/location
    ├── InvalidCredentials   a token or OAuth client was rejected; names where it came from
    ├── AlreadyExists        `uniqueness_error`: adopt the existing object instead
    ├── NotFound             the object is gone (callers often treat this as success)
    └── StepFailed           a provisioning step timed out or exhausted its retry budget

Rate limits and locks do not count against a step's retry budget: they say nothing about
whether the step can succeed.

Adapters in `clients/` (Hetzner, Tailscale, Kubernetes, the gateway probe) raise only these;
a configurator raises `aura.configure.base.ConfigurationError`, which the configure step turns
into `Retryable`. Anything else escaping a step is a bug and reaches kopf as one. Reconcile
steps catch the few they handle (NotFound, AlreadyExists) and let the rest fly. `to_kopf()` is
the single place that turns a pass's outcome (a `Wait` or one of these) into kopf's retry
semantics. Messages never contain secrets: adapters build them from the API's error code and
message, never from request bodies or headers.
"""

from __future__ import annotations

import kopf

from aura.controller.outcomes import Wait

WAIT_MARKER = "waiting:"
"""Prefix of the kopf error a `Wait` becomes; the log filter (`logfilter.py`) keys on it to log
an expected wait at INFO rather than as kopf's ERROR."""


class AuraError(Exception):
    """Base of every classified error."""


class Retryable(AuraError):
    """A transient failure; the same request may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Retryable):
    """The API asked us to slow down."""


class Locked(Retryable):
    """The object is busy with another action; not a failure of ours."""


class Permanent(AuraError):
    """Retrying the same request cannot succeed; `reason` is a CamelCase condition reason."""

    def __init__(self, message: str, *, reason: str = "PermanentError") -> None:
        super().__init__(message)
        self.reason = reason


class InvalidRequest(Permanent):
    """The cloud API rejected our request as invalid (bad type, location, image, quota)."""


class InvalidCredentials(AuraError):
    """A credential was rejected. `source` names the Secret or variable to fix."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(f"{message}: check {source}")
        self.source = source


class AlreadyExists(AuraError):
    """A create hit a uniqueness rule: the object exists (probably created by us earlier)."""


class NotFound(AuraError):
    """The object does not exist (any more)."""


class StepFailed(AuraError):
    """A provisioning step gave up (timeout or retry budget); the attempt must roll back."""

    def __init__(self, step: str, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.step = step
        self.reason = reason


def to_kopf(
    outcome: Wait | AuraError, *, credentials_delay: float, default_delay: float
) -> Exception:
    """The kopf exception that makes kopf retry (or stop) the way `outcome` deserves.

    A `Wait` with a delay comes back after it; a `Wait` without one is not passed here (the
    pass is over until the next event). Transient errors come back after their `retry_after`
    or `default_delay`; permanent ones and failed steps stop the handler.
    """
    if isinstance(outcome, Wait):
        delay = outcome.delay if outcome.delay is not None else default_delay
        return kopf.TemporaryError(f"{WAIT_MARKER} {outcome.reason}", delay=delay)
    if isinstance(outcome, Retryable):
        delay = outcome.retry_after if outcome.retry_after is not None else default_delay
        return kopf.TemporaryError(str(outcome), delay=max(delay, 0.1))
    if isinstance(outcome, InvalidCredentials):
        # Credential Secrets are not watched: come back slowly in case they are fixed.
        return kopf.TemporaryError(str(outcome), delay=credentials_delay)
    if isinstance(outcome, Permanent | StepFailed):
        return kopf.PermanentError(str(outcome))
    return kopf.TemporaryError(str(outcome), delay=default_delay)
