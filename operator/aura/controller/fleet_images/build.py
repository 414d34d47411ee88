"""One pass over an AgentImage: build the image of `spec.openclawVersion`, then prune.

    record?   spec.openclawVersion already has an image (`status.images`): phase Ready,
              delete leftover builders, prune, done
    build     written to `status.build` before anything is created (version, attempt, the
              builder's name), then in order:
      builder   an Agent owned by the AgentImage (from the base image, generated gateway
                token, no customer Secret), provisioned by the ordinary Agent reconcile:
                server, cloud-init with Tailscale, the full playbook, tailnet, /readyz
      healthy   the builder is Running: it passed the health check every Agent passes. A
                builder whose provisioning failed fails the attempt (deleted; next attempt
                until `spec.maxAttempts`, then phase Failed)
      snapshot  `create_image` of the builder's server, labelled with the build (a pass that
                lost the response adopts it by label, never snapshots twice)
      available the image left `creating`; anything else fails the attempt
      record    appended to `status.images` (the only thing Agents read), the build cleared;
                the builder Agent is deleted, its finalizer removes server, device, Secrets
    prune     records beyond `spec.keep` (newest first; the current version's always stays)
              whose image no server was created from any more: Hetzner image, then record

The image carries the builder's generated gateway token and tailnet state, never a customer's:
servers booted from it forget the tailnet identity in cloud-init (as clones do) and their
configuration run writes their own token. A checkpoint never depends on a golden image: a
Hetzner snapshot is a full copy of the disk.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aura.controller import conditions, errors, naming
from aura.controller.checkpoints.store import CheckpointStore
from aura.controller.fleet_images import labels
from aura.controller.fleet_images.choose import architecture
from aura.controller.owned_agents import owned_agent
from aura.controller.reconcile.context import DONE, Logger, StepResult, Wait
from aura.controller.runtime import Operator
from aura.image_models import (
    IMAGE_KIND,
    AgentImageSpec,
    AgentImageStatus,
    BuildStatus,
    ImagePhase,
    ImageRecord,
)
from aura.models import PLURAL
from aura.wire import Condition, ConditionStatus

READY, BUILDING = "Ready", "Building"
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


@dataclass
class ImageContext:
    """One AgentImage during one pass; `status` is written back once, at the end."""

    op: Operator
    namespace: str
    name: str
    uid: str
    generation: int
    spec: AgentImageSpec
    status: AgentImageStatus
    log: Logger
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def conditions(self) -> list[Condition]:
        return self.status.conditions

    def set(self, type_: str, status: ConditionStatus, reason: str, message: str = "") -> None:
        conditions.set_condition(
            self.conditions, type_, status, reason, message, generation=self.generation
        )

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
        self.log.info("event %s: %s", reason, message)

    def now(self) -> datetime:
        return self.op.clock()

    @property
    def store(self) -> CheckpointStore:
        assert self.op.checkpoints is not None
        return self.op.checkpoints


def current_record(cx: ImageContext) -> ImageRecord | None:
    arch = architecture(cx.spec.builder.type)
    for record in cx.status.images:
        if (
            record.openclaw_version == cx.spec.openclaw_version
            and record.base_image == cx.spec.base_image
            and record.architecture == arch
        ):
            return record
    return None


async def reconcile(cx: ImageContext) -> StepResult:
    """One pass; Done or Wait. Errors are `aura.controller.errors`."""
    st = cx.status
    record = current_record(cx)
    if record is not None:
        if st.build is not None:  # a build of an older spec was under way: drop it
            await _drop_build(cx)
        _ready(cx, record)
        await _delete_builders(cx, keep=None)
        await prune(cx)
        return DONE
    if st.build is None or st.build.openclaw_version != cx.spec.openclaw_version:
        if st.build is not None:
            await _drop_build(cx)
        _start(cx, attempt=1)
        return Wait(0.1, "build recorded before the builder is created")
    if st.phase == ImagePhase.FAILED:
        return DONE
    await _delete_builders(cx, keep=st.build.builder_agent)
    for step in (_ensure_builder, _ensure_builder_healthy, _ensure_snapshot, _ensure_available):
        result = await step(cx)
        if isinstance(result, Wait):
            return result
    _record(cx)
    await _delete_builders(cx, keep=None)
    return DONE


def _start(cx: ImageContext, *, attempt: int) -> None:
    version = cx.spec.openclaw_version
    builder = labels.builder_name(cx.name, version, attempt)
    cx.status.build = BuildStatus(
        openclaw_version=version, attempt=attempt, builder_agent=builder, started_at=cx.now()
    )
    cx.status.phase = ImagePhase.BUILDING
    message = f"building {version} (attempt {attempt}) on builder Agent {builder}"
    cx.status.message = message
    cx.set(BUILDING, TRUE, "Building", message)
    if current_record(cx) is None:
        cx.set(READY, FALSE, "Building", f"no image of {version} yet")


async def _ensure_builder(cx: ImageContext) -> StepResult:
    build = cx.status.build
    assert build is not None
    if build.image_id is not None:
        return DONE  # snapshotted: the builder may already be gone
    agent = await cx.store.get(PLURAL, cx.namespace, build.builder_agent)
    if agent is not None:
        if not _owned(cx, agent):
            raise errors.Permanent(
                f"an Agent named {build.builder_agent} exists and is not this AgentImage's "
                "builder; rename or delete it",
                reason="BuilderNameTaken",
            )
        return DONE
    await cx.store.create(PLURAL, cx.namespace, _builder_body(cx, build))
    cx.event("Normal", "BuilderCreated", f"builder Agent {build.builder_agent} created")
    return Wait(cx.op.config.poll_interval, "builder Agent created")


def _builder_body(cx: ImageContext, build: BuildStatus) -> dict[str, Any]:
    return owned_agent(
        owner_kind=IMAGE_KIND,
        owner_name=cx.name,
        owner_uid=cx.uid,
        name=build.builder_agent,
        namespace=cx.namespace,
        labels={
            labels.IMAGE_NAME: naming.label_value(cx.name),
            labels.VERSION: naming.label_value(build.openclaw_version),
        },
        annotations={labels.BUILDER_ANNOTATION: cx.name},
        spec={
            "desiredState": "running",
            "server": {
                "type": cx.spec.builder.type,
                "location": cx.spec.builder.location,
                "image": cx.spec.base_image,
            },
            "runtime": {"openclawVersion": build.openclaw_version},
        },
    )


def _owned(cx: ImageContext, agent: dict[str, Any]) -> bool:
    owners = agent["metadata"].get("ownerReferences") or []
    return any(o.get("uid") == cx.uid for o in owners)


async def _ensure_builder_healthy(cx: ImageContext) -> StepResult:
    build = cx.status.build
    assert build is not None
    if build.image_id is not None:
        return DONE
    agent = await cx.store.get(PLURAL, cx.namespace, build.builder_agent)
    if agent is None:  # deleted behind our back before the snapshot: start it again
        return Wait(cx.op.config.poll_interval, "builder Agent vanished")
    status = agent.get("status") or {}
    if (status.get("provisioning") or {}).get("failedGeneration") is not None:
        return await _fail_attempt(cx, f"builder Agent {build.builder_agent} failed: "
                                   f"{status.get('message') or 'provisioning failed'}")  # fmt: skip
    server_id = (status.get("server") or {}).get("id")
    if status.get("phase") != "Running" or server_id is None:
        phase = status.get("phase") or "new"
        cx.set(BUILDING, TRUE, "WaitingForBuilder", f"builder Agent is {phase}")
        return Wait(cx.op.config.poll_interval, f"builder {phase}")
    build.builder_server_id = int(server_id)
    return DONE


async def _ensure_snapshot(cx: ImageContext) -> StepResult:
    build = cx.status.build
    assert build is not None
    if build.image_id is not None:
        return DONE
    selector = labels.build_selector(cx.uid, build.builder_agent)
    found = sorted(await cx.op.hetzner.list_images(selector), key=lambda i: i.id)
    for extra in found[1:]:  # cannot happen unless created outside this controller
        with contextlib.suppress(errors.NotFound):
            await cx.op.hetzner.delete_image(extra.id)
    if found:
        build.image_id = found[0].id
        return DONE
    assert build.builder_server_id is not None
    image = await cx.op.hetzner.create_image(
        build.builder_server_id,
        description=f"Aura golden image {cx.namespace}/{cx.name} OpenClaw {build.openclaw_version}",
        labels=labels.image_labels(
            cx.namespace, cx.uid, build.builder_agent, build.openclaw_version
        ),
    )
    build.image_id = image.id
    cx.set(BUILDING, TRUE, "Snapshotting", f"image {image.id} is being created")
    return DONE


async def _ensure_available(cx: ImageContext) -> StepResult:
    build = cx.status.build
    assert build is not None
    assert build.image_id is not None
    try:
        image = await cx.op.hetzner.get_image(build.image_id)
    except errors.NotFound:
        return await _fail_attempt(cx, f"image {build.image_id} vanished while being created")
    if image.status == "creating":
        return Wait(cx.op.config.checkpoint_poll_interval, f"image {image.id} creating")
    if image.status != "available":
        return await _fail_attempt(cx, f"image {image.id} is {image.status}")
    cx.status.images.insert(
        0,
        ImageRecord(
            openclaw_version=build.openclaw_version,
            image_id=image.id,
            base_image=cx.spec.base_image,
            architecture=architecture(cx.spec.builder.type),
            size_gb=image.image_size,
            disk_size_gb=int(image.disk_size) if image.disk_size is not None else None,
            built_at=cx.now(),
            build_seconds=round((cx.now() - build.started_at).total_seconds(), 1),
        ),
    )
    return DONE


def _record(cx: ImageContext) -> None:
    record = cx.status.images[0]
    cx.status.build = None
    cx.event(
        "Normal",
        "ImageReady",
        f"golden image {record.image_id} of OpenClaw {record.openclaw_version} ready after "
        f"{record.build_seconds:.0f}s",
    )
    _ready(cx, record)


def _ready(cx: ImageContext, record: ImageRecord) -> None:
    st = cx.status
    st.phase, st.current_image_id = ImagePhase.READY, record.image_id
    st.message = f"image {record.image_id} of OpenClaw {record.openclaw_version}"
    cx.set(READY, TRUE, "ImageReady", st.message)
    cx.set(BUILDING, FALSE, "Idle", "no build under way")


async def _fail_attempt(cx: ImageContext, message: str) -> StepResult:
    build = cx.status.build
    assert build is not None
    cx.event("Warning", "BuildFailed", f"attempt {build.attempt}: {message}")
    await _drop_build(cx)
    if build.attempt >= cx.spec.max_attempts:
        cx.status.build = build  # kept: it names the version that failed
        cx.status.build.image_id = None
        cx.status.phase = ImagePhase.FAILED
        cx.status.message = f"{message} ({build.attempt} of {cx.spec.max_attempts} attempts)"
        cx.set(BUILDING, FALSE, "Failed", cx.status.message)
        if current_record(cx) is None:
            cx.set(READY, FALSE, "BuildFailed", cx.status.message)
        return DONE
    _start(cx, attempt=build.attempt + 1)
    return Wait(0.1, "next attempt recorded")


async def _drop_build(cx: ImageContext) -> None:
    """Delete the build's builder Agent and its partial image (a record is never dropped)."""
    build = cx.status.build
    assert build is not None
    recorded = {r.image_id for r in cx.status.images}
    ids = {i.id for i in await cx.op.hetzner.list_images(
        labels.build_selector(cx.uid, build.builder_agent))}  # fmt: skip
    if build.image_id is not None:
        ids.add(build.image_id)
    for image_id in sorted(ids - recorded):
        await _delete_image(cx, image_id)
    await cx.store.delete(PLURAL, cx.namespace, build.builder_agent)
    cx.status.build = None


async def _delete_builders(cx: ImageContext, *, keep: str | None) -> None:
    """Delete every builder Agent of this AgentImage except `keep` (left by a crash or by a
    build that was replaced)."""
    for agent in await cx.store.list(PLURAL, cx.namespace):
        name = agent["metadata"]["name"]
        if name == keep or not _owned(cx, agent) or agent["metadata"].get("deletionTimestamp"):
            continue
        await cx.store.delete(PLURAL, cx.namespace, name)
        cx.log.info("deleted builder Agent %s", name)


async def _delete_image(cx: ImageContext, image_id: int) -> None:
    try:
        await cx.op.hetzner.delete_image(image_id)
    except errors.NotFound:
        return
    except errors.Locked:
        raise errors.Locked(
            f"image {image_id} is still being created; deleted once Hetzner unlocks it",
            retry_after=cx.op.config.checkpoint_poll_interval,
        ) from None
    cx.log.info("deleted golden image %s", image_id)


async def in_use(cx: ImageContext, image_id: int) -> bool:
    """A server created from `image_id` still exists (a fresh list, not the cache's)."""
    servers = await cx.op.servers.find_by_label(labels.GOLDEN_IMAGE, str(image_id), max_age=0)
    return bool(servers)


async def prune(cx: ImageContext) -> None:
    """Delete records beyond `spec.keep` whose image no server uses (newest kept first)."""
    ordered = sorted(cx.status.images, key=lambda r: r.built_at, reverse=True)
    current = current_record(cx)
    kept = [r for r in ordered if r is current]
    kept += [r for r in ordered if r is not current][: max(0, cx.spec.keep - len(kept))]
    for record in ordered:
        if record in kept or await in_use(cx, record.image_id):
            continue
        await _delete_image(cx, record.image_id)
        cx.status.images = [r for r in cx.status.images if r.image_id != record.image_id]
        cx.event(
            "Normal",
            "ImagePruned",
            f"golden image {record.image_id} of OpenClaw {record.openclaw_version} deleted",
        )


async def finalize(cx: ImageContext) -> None:
    """The AgentImage is being deleted: builders, then every image it made. Servers created
    from them keep running (a Hetzner server does not need its image after the create)."""
    await _delete_builders(cx, keep=None)
    ids = {i.id for i in await cx.op.hetzner.list_images(labels.image_selector(cx.uid))}
    ids |= {r.image_id for r in cx.status.images}
    if cx.status.build is not None and cx.status.build.image_id is not None:
        ids.add(cx.status.build.image_id)
    for image_id in sorted(ids):
        await _delete_image(cx, image_id)
    cx.status.images, cx.status.build = [], None
