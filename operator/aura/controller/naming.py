"""Deterministic names and ownership labels of everything the operator creates for an Agent.

The same Agent always yields the same server name, tailnet hostname, Secret names and labels,
which is what makes every step idempotent across crashes: a server created just before the
operator died is found again by its labels (or, on `uniqueness_error`, by its name) and
adopted instead of duplicated.
"""

from __future__ import annotations

import hashlib
import re

from aura.controller.clients.kube import AgentRef

MANAGED_BY = "aura.dev/managed-by"
MANAGED_BY_VALUE = "aura-operator"
AGENT_UID = "aura.dev/agent-uid"
AGENT_NAMESPACE = "aura.dev/agent-namespace"
AGENT_NAME = "aura.dev/agent-name"
SECRET_ROLE = "aura.dev/secret-role"  # noqa: S105 (a label key)

MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
RETRY_ANNOTATION = "aura.dev/retry"

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def _dns_part(text: str) -> str:
    return _NOT_DNS.sub("-", text.lower()).strip("-")


def short_hash(uid: str, length: int = 6) -> str:
    return hashlib.sha256(uid.encode()).hexdigest()[:length]


def server_name(agent: AgentRef) -> str:
    """`aura-<namespace>-<name>-<uid hash>`, a valid RFC 1123 label of at most 63 characters.

    The hash keeps names unique when truncation makes two long names collide, and makes a
    re-created Agent of the same name (new UID) get a new server rather than adopt the
    previous incarnation's.
    """
    suffix = "-" + short_hash(agent.uid)
    stem = _dns_part(f"aura-{agent.namespace}-{agent.name}")[: 63 - len(suffix)].rstrip("-")
    return stem + suffix


def tailnet_hostname(agent: AgentRef, override: str | None) -> str:
    return override or server_name(agent)


def label_value(text: str) -> str:
    # Hetzner label values: at most 63 characters of [a-zA-Z0-9._-], alphanumeric at both ends.
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("-._") or "x"


def server_labels(agent: AgentRef) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGED_BY_VALUE,
        AGENT_UID: agent.uid,
        AGENT_NAMESPACE: label_value(agent.namespace),
        AGENT_NAME: label_value(agent.name),
    }


def secret_labels(agent: AgentRef, role: str) -> dict[str, str]:
    return {**server_labels(agent), SECRET_ROLE: role}


def auth_key_secret(agent: AgentRef) -> str:
    return f"{agent.name[:230]}-tailnet-authkey"


def ssh_secret(agent: AgentRef) -> str:
    return f"{agent.name[:240]}-ssh"
