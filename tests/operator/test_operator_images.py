"""Golden images end to end: the real operator builds an AgentImage on a builder Agent in the
sandbox, new Agents boot from it, a new version builds a new image, unused old ones are pruned,
and a SIGKILL at any point of a build leaves one image and no builder behind."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from aura.image_models import IMAGE_PLURAL
from aura.models import GROUP, PLURAL, VERSION
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import CHECKPOINT_FLAGS, create, get, images, wait_status
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    events,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration
Start = Callable[..., OperatorProcess]
PACKAGES = "usr/lib/node_modules/openclaw/package.json"


def agent_image(cluster: Cluster, namespace: str, name: str, version: str, **spec: Any) -> None:
    create(
        cluster, namespace, IMAGE_PLURAL, "AgentImage", name, openclawVersion=version, **spec
    )  # fmt: skip


def image_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return (get(cluster, namespace, IMAGE_PLURAL, name) or {}).get("status") or {}


def builders(cluster: Cluster, namespace: str) -> list[str]:
    items = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return [
        a["metadata"]["name"]
        for a in items["items"]
        if "aura.dev/image-builder" in (a["metadata"].get("annotations") or {})
    ]


def test_agents_boot_from_the_golden_image_and_old_images_are_pruned(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent_image(cluster, namespace, "runtime", "2026.3.1", keep=1)
    ready = wait_status(cluster, namespace, IMAGE_PLURAL, "runtime", "Ready", timeout=120)
    status, uid = ready["status"], ready["metadata"]["uid"]
    (record,) = status["images"]
    golden = status["currentImageID"]
    assert record["imageID"] == golden and record["openclawVersion"] == "2026.3.1"
    assert record["architecture"] == "x86" and record["baseImage"] == "ubuntu-24.04"
    assert [i.id for i in images(sandbox, f"aura.dev/agentimage-uid={uid}")] == [golden]
    # The builder passed the ordinary Agent path and is gone, with its server.
    reasons = {e["reason"] for e in events(cluster, namespace, "runtime")}
    assert {"BuilderCreated", "ImageReady"} <= reasons
    wait_for(lambda: builders(cluster, namespace) == [], timeout=30, what="builder deleted")
    wait_for(lambda: servers_of(sandbox) == [], timeout=30, what="builder server deleted")

    # Two Agents at once: the one whose version has an image boots from it and is Running
    # while the other still installs the packages from scratch.
    apply(cluster, agent_manifest("warm", namespace))
    apply(cluster, agent_manifest("cold", namespace, runtime={"openclawVersion": "2026.2.0"}))
    warm = wait_phase(cluster, namespace, "warm", "Running", timeout=60)
    assert (get_agent(cluster, namespace, "cold") or {})["status"].get("phase") != "Running"
    server = sandbox.server(warm["status"]["server"]["id"])
    assert server["image_id"] == golden
    assert server["labels"]["aura.dev/golden-image"] == str(golden)
    assert server["openclaw_version"] == "2026.3.1"
    cold = wait_phase(cluster, namespace, "cold", "Running", timeout=60)
    assert sandbox.server(cold["status"]["server"]["id"])["image_id"] != golden

    # A new version: a new image; the old one stays while warm's server was made from it.
    new_version = {"spec": {"openclawVersion": "2026.4.0"}}
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, IMAGE_PLURAL, "runtime", new_version
    )

    def rebuilt() -> dict[str, Any] | None:
        st = image_status(cluster, namespace, "runtime")
        return st if st.get("currentImageID") not in (None, golden) else None

    new = wait_for(rebuilt, timeout=120, what="image of 2026.4.0")
    assert new["phase"] == "Ready"
    assert [r["openclawVersion"] for r in new["images"]] == ["2026.4.0", "2026.3.1"]
    time.sleep(2)  # two prune timer intervals: the old image is in use, so it stays
    assert len(image_status(cluster, namespace, "runtime")["images"]) == 2

    # Once warm's server is gone nothing depends on the old image: keep=1 prunes it.
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "warm")
    wait_for(
        lambda: len(image_status(cluster, namespace, "runtime")["images"]) == 1,
        timeout=60,
        what="old image pruned",
    )
    left = [i.id for i in images(sandbox, f"aura.dev/agentimage-uid={uid}")]
    assert left == [new["currentImageID"]]

    # Deleting the AgentImage deletes its images; the cold Agent is untouched.
    cluster.custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, IMAGE_PLURAL, "runtime"
    )
    wait_for(
        lambda: images(sandbox, f"aura.dev/agentimage-uid={uid}") == [],
        timeout=30,
        what="images deleted with the AgentImage",
    )
    assert wait_phase(cluster, namespace, "cold", "Running", timeout=5)


def test_sigkill_during_a_build_leaves_one_image_and_no_builder(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    op = start_operator(**CHECKPOINT_FLAGS)
    agent_image(cluster, namespace, "crashy", "2026.3.1")
    rng = random.Random(18)
    deadline = time.monotonic() + 150
    kills = 0
    while image_status(cluster, namespace, "crashy").get("phase") != "Ready":
        assert time.monotonic() < deadline, image_status(cluster, namespace, "crashy")
        time.sleep(rng.uniform(0.3, 2.5))
        if kills < 8:
            op.kill()
            op.start()
            kills += 1
    status = image_status(cluster, namespace, "crashy")
    uid = (get(cluster, namespace, IMAGE_PLURAL, "crashy") or {})["metadata"]["uid"]
    assert kills >= 3
    assert [i.id for i in images(sandbox, f"aura.dev/agentimage-uid={uid}")] == [
        status["currentImageID"]
    ]
    assert len(status["images"]) == 1
    wait_for(lambda: builders(cluster, namespace) == [], timeout=30, what="builders deleted")
    wait_for(lambda: servers_of(sandbox) == [], timeout=30, what="no server leaked")
