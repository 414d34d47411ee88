"""One pass over an AgentPool: retire, refill, report.

    image     the AgentImage named by `spec.image` must have a current image; until then the
              pool holds nothing (members are built from that image, never cold)
    retire    members handed to an Agent (their server carries the Agent now) once that Agent
              is past coming up (a member in hand-over still counts), claimed by an
              Agent that no longer exists, failed or degraded (replaced, never repaired), or
              of an older image version: deleted (a handed-over member's deletion keeps the
              server and device, `members.py`)
    refill    up to the target: `spec.min`, capped by `spec.max` and by the namespace's
              AgentBudgets (a new member is priced at a full month of its server type); beyond
              `spec.max` the newest unclaimed members go
    report    ready / booting / target / served, the members' cost per month, `capped`

Members are found by their ownerReference, never by the status, so a pass killed after a
create (or a delete) sees the result on the next one: no member is leaked or counted twice.
A member is an ordinary Agent: it boots from the golden image, joins the tailnet under the
pool's tags, is configured with a pool-owned gateway token and passes the ordinary health
check. It carries no customer Secret.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from aura.controller import conditions, naming
from aura.controller.checkpoints.store import CheckpointStore
from aura.controller.owned_agents import owned_agent
from aura.controller.pool.labels import CLAIMED_BY, POOL
from aura.controller.pool.members import annotations_of
from aura.controller.reconcile.context import DONE, Logger, StepResult, Wait
from aura.controller.runtime import Operator
from aura.cost.budget_models import AgentBudgetSpec, AgentBudgetStatus, BudgetAction
from aura.cost.prices import parse_pricing
from aura.image_models import IMAGE_PLURAL, AgentImageStatus, ImageRecord
from aura.models import PLURAL
from aura.pool_models import POOL_KIND, AgentPoolSpec, AgentPoolStatus
from aura.wire import Condition, ConditionStatus

READY = "Ready"
PRICE_MAX_AGE = 3600.0
_prices: dict[int, tuple[float, dict[str, Any]]] = {}
"""id(Operator) -> (fetched at, GET /pricing): one price fetch an hour per process."""


@dataclass
class PoolContext:
    op: Operator
    namespace: str
    name: str
    uid: str
    generation: int
    spec: AgentPoolSpec
    status: AgentPoolStatus
    log: Logger
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def conditions(self) -> list[Condition]:
        return self.status.conditions

    @property
    def store(self) -> CheckpointStore:
        assert self.op.checkpoints is not None
        return self.op.checkpoints

    def set(self, status: ConditionStatus, reason: str, message: str) -> None:
        conditions.set_condition(
            self.conditions, READY, status, reason, message, generation=self.generation
        )
        self.status.message = message

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
        self.log.info("event %s: %s", reason, message)

    def now(self) -> datetime:
        return self.op.clock()


async def reconcile(cx: PoolContext) -> StepResult:
    record = await _image(cx)
    if record is None:
        message = f"waiting for AgentImage {cx.spec.image} to have a Ready image"
        cx.set(ConditionStatus.FALSE, "WaitingForImage", message)
        return Wait(cx.op.config.poll_interval * 4, message)
    cx.status.image_id, cx.status.openclaw_version = record.image_id, record.openclaw_version
    agents = await cx.store.list(PLURAL, cx.namespace)
    phases = {
        a["metadata"]["uid"]: (a.get("status") or {}).get("phase")
        for a in agents
        if not a["metadata"].get("deletionTimestamp")
    }
    mine = [a for a in agents if _owned(cx, a) and not a["metadata"].get("deletionTimestamp")]
    servers: dict[int, str | None] = {}
    if any(_settled(phases, annotations_of(a).get(CLAIMED_BY)) for a in mine):
        # One list per pass, through the shared cache: a refresh per member would queue every
        # Agent's server lookup behind it.
        fresh = await cx.op.servers.all(max_age=cx.op.config.poll_interval)
        servers = {s.id: s.labels.get(naming.AGENT_UID) for s in fresh}
    live: list[dict[str, Any]] = []
    handing = 0  # claimed, the claimant still coming up: counted, neither retired nor replaced
    for member in mine:
        why = _retire_reason(member, record, phases, servers)
        if why is None:
            claimant = annotations_of(member).get(CLAIMED_BY)
            if claimant is None:
                live.append(member)
            elif not _settled(phases, claimant):
                handing += 1
            continue
        await cx.store.delete(PLURAL, cx.namespace, member["metadata"]["name"])
        if why == "served":
            cx.status.served += 1
        else:
            cx.event("Normal", "MemberRetired", f"{member['metadata']['name']}: {why}")
    price, currency = await _price(cx)
    target, capped = await _target(cx, price, len(live) + handing)
    cx.status.target, cx.status.capped = target, capped
    members = len(live) + handing
    if members < target:
        for _ in range(target - members):
            await _create_member(cx, record)
        cx.status.last_refill, members = cx.now(), target
    elif members > cx.spec.max:
        newest = sorted(live, key=lambda a: a["metadata"]["creationTimestamp"], reverse=True)
        for member in newest[: members - cx.spec.max]:
            await cx.store.delete(PLURAL, cx.namespace, member["metadata"]["name"])
            live.remove(member)
        members = len(live) + handing
    ready = sum(1 for a in live if (a.get("status") or {}).get("phase") == "Running")
    cx.status.ready, cx.status.booting = ready, members - handing - ready
    cx.status.cost_per_month = round(members * price, 2) if price is not None else None
    cx.status.currency = currency
    state = ConditionStatus.TRUE if ready >= target else ConditionStatus.FALSE
    cap = " (capped by the namespace's AgentBudget)" if capped else ""
    cx.set(state, "Warm" if ready >= target else "Filling", f"{ready}/{target} warm{cap}")
    return Wait(cx.op.config.poll_interval, "watching members") if ready < target else DONE


def _owned(cx: PoolContext, agent: dict[str, Any]) -> bool:
    owners = agent["metadata"].get("ownerReferences") or []
    return any(o.get("uid") == cx.uid for o in owners)


async def _image(cx: PoolContext) -> ImageRecord | None:
    obj = await cx.store.get(IMAGE_PLURAL, cx.namespace, cx.spec.image)
    if obj is None:
        return None
    try:
        status = AgentImageStatus.model_validate(dict(obj.get("status") or {}))
    except ValidationError:
        return None
    return next((r for r in status.images if r.image_id == status.current_image_id), None)


COMING_UP = ("Queued", "Provisioning", "Configuring", "Networking", None)
"""A claimant in one of these phases is still being handed its server."""


def _settled(phases: dict[str, str | None], claimant: str | None) -> bool:
    """The claimant's hand-over is over: it is gone, or past coming up (Running, or failed)."""
    return claimant is not None and (claimant not in phases or phases[claimant] not in COMING_UP)


def _retire_reason(
    member: dict[str, Any],
    record: ImageRecord,
    phases: dict[str, str | None],
    servers: dict[int, str | None],
) -> str | None:
    """Why `member` goes now, or None. `phases`: Agent UID -> phase of every Agent not being
    deleted; `servers`: server ID -> the Agent UID it is labelled with (listed only when some
    claimant settled).

    A claimed member goes once its claimant has settled, not at the commit: until then it
    counts towards the target, so a burst of binds is not slowed by the refill's own cloud
    calls (new members' tailnet keys, retired members' key deletions), which share the
    operator's Tailscale pacer with the binds' device re-tags."""
    status, spec = member.get("status") or {}, member.get("spec") or {}
    claimant = annotations_of(member).get(CLAIMED_BY)
    if claimant is not None:
        if claimant not in phases:
            return f"claimed by Agent {claimant}, which is gone"
        if not _settled(phases, claimant):
            return None  # the hand-over is under way
        server_id = (status.get("server") or {}).get("id")
        if server_id is not None and servers.get(int(server_id)) == claimant:
            return "served"
        return None  # not committed yet: left alone (and not counted), as under way
    if (status.get("provisioning") or {}).get("failedGeneration") is not None:
        return "its provisioning failed"
    if status.get("phase") == "Degraded":
        return "it failed its health check"
    version = (spec.get("runtime") or {}).get("openclawVersion")
    if version != record.openclaw_version:
        return f"built for {version}, the image is {record.openclaw_version} now"
    return None


async def _price(cx: PoolContext) -> tuple[float | None, str | None]:
    """Monthly net price of one member (Hetzner's price list, cached an hour)."""
    cached = _prices.get(id(cx.op))
    if cached is None or time.monotonic() - cached[0] > PRICE_MAX_AGE:
        try:
            cached = (time.monotonic(), await cx.op.hetzner.get_pricing())
        except Exception as exc:  # no price: the pool still works, the cap is off
            cx.log.warning("pool %s: no price list: %s", cx.name, type(exc).__name__)
            return None, None
        _prices[id(cx.op)] = cached
    try:
        prices = parse_pricing(cached[1], as_of=cx.now())
    except ValueError:
        return None, None
    found = prices.server(cx.spec.server_type, cx.spec.location)
    return (found.monthly, prices.currency) if found is not None else (None, prices.currency)


async def _target(cx: PoolContext, price: float | None, live: int) -> tuple[int, bool]:
    """`spec.min` within `spec.max`, then as many as the namespace's budgets leave room for:
    new members only while no BlockNew threshold is reached by (projected spend + a full month
    of each new member)."""
    wanted = min(cx.spec.min, cx.spec.max)
    if wanted <= live or cx.op.budgets is None:
        return wanted, False
    room = math.inf
    for obj in await cx.op.budgets.list_budgets(cx.namespace):
        try:
            spec = AgentBudgetSpec.model_validate(obj.get("spec") or {})
            status = AgentBudgetStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            continue
        blocks = [t.percent for t in spec.thresholds if t.action == BudgetAction.BLOCK_NEW]
        ceiling = spec.limit * min(blocks, default=100) / 100
        spent = status.projected if status.projected is not None else status.current_spend
        if spent is None:
            room = 0 if blocks else room
            continue
        headroom = max(0.0, ceiling - spent)
        room = min(room, math.floor(headroom / price) if price else math.inf)
    allowed = live + room
    return (int(allowed), True) if allowed < wanted else (wanted, False)


async def _create_member(cx: PoolContext, record: ImageRecord) -> None:
    name = f"{cx.name[:40].rstrip('-.')}-{secrets.token_hex(3)}"
    body = owned_agent(
        owner_kind=POOL_KIND,
        owner_name=cx.name,
        owner_uid=cx.uid,
        name=name,
        namespace=cx.namespace,
        labels={POOL: naming.label_value(cx.name)},
        annotations={POOL: cx.name},
        spec={
            "desiredState": "running",
            "server": {
                "type": cx.spec.server_type,
                "location": cx.spec.location,
                "image": record.base_image,
            },
            "runtime": {"openclawVersion": record.openclaw_version},
            "tailscale": {"tags": list(cx.spec.tags)},
        },
    )
    await cx.store.create(PLURAL, cx.namespace, body)
    cx.log.info("pool %s: member %s created", cx.name, name)


async def finalize(cx: PoolContext) -> None:
    """The pool is deleted: its unclaimed members go (claimed ones finish their hand-over;
    the ownerReference lets the garbage collector remove them after)."""
    for agent in await cx.store.list(PLURAL, cx.namespace):
        if _owned(cx, agent) and CLAIMED_BY not in annotations_of(agent):
            await cx.store.delete(PLURAL, cx.namespace, agent["metadata"]["name"])
