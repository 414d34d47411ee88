"""Labels and names of golden images, their builder Agents and the servers booted from them.

Every cloud object a build creates is found again by its labels, so a pass killed at any
instant adopts what the previous one left instead of creating a second one:

- the builder Agent carries `IMAGE_NAME` (and an ownerReference to its AgentImage), and its
  name is derived from the AgentImage, the version and the attempt: a create that raced or
  whose response was lost meets 409 and reads the existing Agent;
- the snapshot carries `IMAGE_UID` and `BUILD` (the builder's name): a pass that lost the
  `create_image` response finds it with `build_selector` instead of snapshotting again;
- a server booted from a golden image carries `GOLDEN_IMAGE` (the image ID): prune keeps an
  image while such a server exists.
"""

from __future__ import annotations

from aura.controller import naming
from aura.image_models import ImageRecord

IMAGE_UID = "aura.dev/agentimage-uid"
IMAGE_NAME = "aura.dev/agentimage-name"
BUILD = "aura.dev/image-build"
VERSION = "aura.dev/openclaw-version"
GOLDEN_IMAGE = "aura.dev/golden-image"
BUILDER_ANNOTATION = "aura.dev/image-builder"
"""On a builder Agent: it is built from the base image, never from a golden one."""


def builder_name(image_name: str, version: str, attempt: int) -> str:
    """`<image>-build-<hash>`: deterministic per (image, version, attempt), a DNS label."""
    suffix = "-build-" + naming.short_hash(f"{version}/{attempt}", 8)
    return image_name[: 63 - len(suffix)].rstrip("-.") + suffix


def image_labels(namespace: str, image_uid: str, builder: str, version: str) -> dict[str, str]:
    return {
        naming.MANAGED_BY: naming.MANAGED_BY_VALUE,
        naming.AGENT_NAMESPACE: naming.label_value(namespace),
        IMAGE_UID: image_uid,
        BUILD: naming.label_value(builder),
        VERSION: naming.label_value(version),
    }


def image_selector(image_uid: str) -> str:
    return f"{naming.MANAGED_SELECTOR},{IMAGE_UID}={image_uid}"


def build_selector(image_uid: str, builder: str) -> str:
    return f"{image_selector(image_uid)},{BUILD}={naming.label_value(builder)}"


def server_labels(golden: ImageRecord | None) -> dict[str, str]:
    """Extra labels of a server created from the golden image `golden` (none without one)."""
    return {GOLDEN_IMAGE: str(golden.image_id)} if golden is not None else {}
