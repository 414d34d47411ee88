"""Shards: splitting a fleet over several operator Deployments by one label.

An Agent's shard is its `aura.dev/shard` label, set when the Agent is created and never
changed (the ValidatingAdmissionPolicy `aura-agent-shard-immutable`, manifests/): moving an
Agent between shards while both reconcile it could run two passes at once. An Agent without
the label belongs to the *default shard*.

`aura operator --shard NAME` serves exactly the Agents labelled `aura.dev/shard=NAME`; without
`--shard` it serves the default shard, the Agents without the label (in a fleet that never
labels an Agent: all of them, as before shards existed). The two selectors are disjoint and
every Agent matches one, so each Agent has exactly one operator. They are server-side label
selectors on kopf's watches (`settings.watching.label_selectors`): a shard's operator never
receives, caches or indexes another shard's Agents, so its memory and CPU follow its own
shard's size. AgentCheckpoints and AgentRestores carry their Agent's shard label the same way
(the checkpoint schedule copies it onto the checkpoints it creates).

Each shard is its own Deployment with its own kopf peering name (replicas of one shard elect
their active one; two shards in one peering would pause each other). Fleet-wide duties that
must run once — the orphan sweep (over every Agent of every shard), the cost refresh, the
AgentBudgets, AgentImages and AgentPools (whose Agents carry no shard label) — run in the
default shard's operator only. The checkpoints an operator takes by itself for one of its
Agents (hibernation, the final one) carry its shard label (`own_label`).
"""

from __future__ import annotations

import re
from typing import Any

import kopf

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL
from aura.models import GROUP, PLURAL

SHARD_LABEL = "aura.dev/shard"
SHARDED_PLURALS = (PLURAL, CHECKPOINT_PLURAL, RESTORE_PLURAL)
# A label value (RFC 1123-ish: what Kubernetes accepts), at most 63 characters.
_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


def validate(shard: str) -> str:
    """`shard` if it can be a label value; else ValueError saying what is wrong."""
    if not _VALUE.match(shard):
        raise ValueError(
            f"{shard!r} is not a valid label value for {SHARD_LABEL}: use at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return shard


def selector(shard: str | None) -> str:
    """The label selector of the Agents (and checkpoints, restores) a shard serves."""
    return f"{SHARD_LABEL}={shard}" if shard else f"!{SHARD_LABEL}"


def apply(settings: kopf.OperatorSettings, shard: str | None) -> None:
    """Restrict kopf's watches of the sharded resources to `shard` (server-side)."""
    for plural in SHARDED_PLURALS:
        settings.watching.label_selectors[GROUP, plural] = selector(shard)


def runs_fleet_duties(shard: str | None) -> bool:
    """The default shard's operator sweeps orphans and refreshes costs for the whole fleet."""
    return not shard


def own_label(shard: str | None) -> dict[str, str]:
    """The shard label of what an operator of `shard` creates for one of its Agents."""
    return {SHARD_LABEL: shard} if shard else {}


def label_of(obj: dict[str, Any]) -> dict[str, str]:
    """The shard label of `obj` as a labels dict to copy onto what is created for it."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(SHARD_LABEL)
    return {SHARD_LABEL: value} if value else {}
