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


def _join_words(*parts: str) -> str:
    """Join DNS-label parts with `-`, dropping the words a part repeats from the end of what
    came before: `aura` + `aura-demo` + `acme` is `aura-demo-acme`, not `aura-aura-demo-acme`.

    Only whole words overlap (`aurora` does not swallow `aura`), and the longest overlap wins,
    so `team-a` + `team-a-bot` is `team-a-bot`.
    """
    words: list[str] = []
    for part in parts:
        new = [w for w in _dns_part(part).split("-") if w]
        overlap = next(
            (n for n in range(min(len(words), len(new)), 0, -1) if words[-n:] == new[:n]), 0
        )
        words.extend(new[overlap:])
    return "-".join(words)


def server_name(agent: AgentRef) -> str:
    """`aura-<namespace>-<name>-<uid hash>`, a valid RFC 1123 label of at most 63 characters,
    with no word repeated where two parts meet (namespace `aura-demo` gives
    `aura-demo-acme-<hash>`).

    The hash keeps names unique when truncation or the dropped words make two names collide,
    and makes a re-created Agent of the same name (new UID) get a new server rather than
    adopt the previous incarnation's. Servers are found again by their labels, so a server
    created under an older naming scheme (`legacy_server_name`) keeps its name.
    """
    suffix = "-" + short_hash(agent.uid)
    stem = _join_words("aura", agent.namespace, agent.name)[: 63 - len(suffix)].rstrip("-")
    return stem + suffix


def legacy_server_name(agent: AgentRef) -> str:
    """The name releases before the overlap rule gave (`aura-aura-demo-acme-<hash>`): servers
    and tailnet devices created then still carry it, and must still count as this Agent's."""
    suffix = "-" + short_hash(agent.uid)
    stem = _dns_part(f"aura-{agent.namespace}-{agent.name}")[: 63 - len(suffix)].rstrip("-")
    return stem + suffix


def server_names(agent: AgentRef) -> set[str]:
    """Every name this Agent's server or device may carry: the current and the legacy one."""
    return {server_name(agent), legacy_server_name(agent)}


def name_prefixes(namespace: str | None) -> tuple[str, ...]:
    """Prefixes of every generated name in `namespace` (any namespace when None), current and
    legacy: the sweeper only considers devices whose hostname starts with one of them."""
    if not namespace:
        return ("aura-",)
    return tuple(sorted({_join_words("aura", namespace) + "-", f"aura-{_dns_part(namespace)}-"}))


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


def gateway_token_secret(agent: AgentRef) -> str:
    """The Secret holding the gateway token the operator generated (no `spec.runtime.secretRef`)."""
    return f"{agent.name[:230]}-gateway-token"


RUNTIME_SECRET_ANNOTATION = "aura.dev/runtime-secret-version"  # noqa: S105 (a key name)
"""Set by the operator on an Agent waiting for its runtime Secret when that Secret appears or
changes (the Secret's resourceVersion): the change starts the Agent's next pass at once."""
