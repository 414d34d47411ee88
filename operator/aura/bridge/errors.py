"""The bridge's error tree. Client adapters translate SDK errors into it exactly once:

    BridgeError
    ├── RetryableError      the same call may succeed later (5xx, 429, timeouts, no route)
    │   └── ConflictError   HTTP 409 on a compare-and-patch: re-read the object and retry
    └── PermanentError      retrying the same call cannot help (4xx other than 409/429)
        └── FinalStateError the Agent is a `deleted` record; the CRD refuses to revive it

Messages never contain credentials: adapters build them from status codes and reasons only.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class RetryableError(BridgeError):
    """A transient failure: retry with backoff, then answer 5xx so Stripe redelivers."""


class ConflictError(RetryableError):
    """The object changed between read and write (HTTP 409)."""


class PermanentError(BridgeError):
    """The request itself is wrong; answering 5xx would only make Stripe retry in vain."""


class FinalStateError(PermanentError):
    """The Agent's desiredState is `deleted`: it is a record and never changes again."""


class NotFoundError(PermanentError):
    """The object (or its namespace) does not exist."""


class AlreadyExistsError(PermanentError):
    """A create found an object of that name already there."""
