"""Labels on every snapshot image Aura creates, so each is found again (and by a person).

An image carries its Agent's labels (`managed-by`, agent UID, namespace, name) plus the UID and
name of its AgentCheckpoint and the deletion policy. The checkpoint UID is what a pass whose
`create_image` response was lost adopts the image by; the Agent namespace and name are how a
person finds a `Retain` image after its Agent is gone; the policy is what the sweeper reads.
"""

from __future__ import annotations

from aura.controller import naming
from aura.controller.clients.kube import AgentRef

CHECKPOINT_UID = "aura.dev/checkpoint-uid"
CHECKPOINT_NAME = "aura.dev/checkpoint-name"
DELETION_POLICY = "aura.dev/deletion-policy"
SCHEDULED = "aura.dev/scheduled"  # on AgentCheckpoints the schedule created (and may prune)


def image_labels(
    agent: AgentRef, checkpoint_uid: str, checkpoint_name: str, policy: str
) -> dict[str, str]:
    return {
        **naming.server_labels(agent),
        CHECKPOINT_UID: checkpoint_uid,
        CHECKPOINT_NAME: naming.label_value(checkpoint_name),
        DELETION_POLICY: policy,
    }


def checkpoint_selector(checkpoint_uid: str) -> str:
    return f"{naming.MANAGED_SELECTOR},{CHECKPOINT_UID}={checkpoint_uid}"
