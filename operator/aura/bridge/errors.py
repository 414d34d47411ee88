"""The bridge's error tree, named like the operator's (`aura.controller.errors`). Client
adapters translate SDK errors into it exactly once:

    BridgeError
    ├── Retryable           the same call may succeed later (5xx, 429, timeouts, no route)
    │   └── Conflict        HTTP 409 on a compare-and-patch: re-read the object and retry
    └── Permanent           retrying the same call cannot help (4xx other than 409/429)
        ├── FinalState      the Agent is a `deleted` record; the CRD refuses to revive it
        ├── NotFound        the object (or its namespace) does not exist
        └── AlreadyExists   a create found an object of that name already there

Messages never contain credentials: adapters build them from status codes and reasons only.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class Retryable(BridgeError):
    """A transient failure: retry with backoff, then answer 5xx so Stripe redelivers."""


class Conflict(Retryable):
    """The object changed between read and write (HTTP 409)."""


class Permanent(BridgeError):
    """The request itself is wrong; answering 5xx would only make Stripe retry in vain."""


class FinalState(Permanent):
    """The Agent's desiredState is `deleted`: it is a record and never changes again."""


class NotFound(Permanent):
    """The object (or its namespace) does not exist."""


class AlreadyExists(Permanent):
    """A create found an object of that name already there."""
