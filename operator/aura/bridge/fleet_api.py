"""The fleet API behind the team's fleet page, and the minting of customer-scoped tokens.

- `POST /v1/tokens?customer=cus_...&ttl=900`  a `customer:read` token (operator token needed);
- `GET  /v1/fleet`                            every Agent: phase, desired state, time in phase,
                                              customer, cost when known, last Event, the actions
                                              its phase allows;
- `POST /v1/agents/{namespace}/{name}/actions/{action}`  start, stop, hibernate: a
  `fleet:write` token only, and only when `allowed_actions` offers it.

An action is one compare-and-set merge patch of `spec.desiredState` that records who did it in
the Agent's annotations (`aura.dev/last-action`, `-by`, `-at`), then a Kubernetes Event naming
the same person. Suspension belongs to billing: no action starts a suspended Agent.
"""

# No `from __future__ import annotations`: FastAPI evaluates the route annotations.
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from kubernetes_asyncio import client

from aura.bridge import access, tokens
from aura.bridge.access import Principal
from aura.bridge.agents import AgentStore, classify
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import BridgeError, Conflict
from aura.bridge.status_api import CUSTOMER_PATTERN, Name, Namespace
from aura.bridge.views import AgentView, EventView, _View
from aura.history import ordered, read_events
from aura.models import GROUP, VERSION

log = logging.getLogger(__name__)
ANNOTATION_ACTION = "aura.dev/last-action"
ANNOTATION_ACTION_BY = "aura.dev/last-action-by"
ANNOTATION_ACTION_AT = "aura.dev/last-action-at"
REPORTER = "aura.dev/bridge"
HIBERNATED = "hibernated"

ACTIONS = {"start": "running", "stop": "stopped", "hibernate": HIBERNATED}
"""Action name -> the desiredState it sets."""
_STOPPABLE = {
    "Queued",
    "Provisioning",
    "Configuring",
    "Networking",
    "Starting",
    "Running",
    "Degraded",
    "Failed",
}


def allowed_actions(phase: str | None, desired: str | None) -> list[str]:
    """The actions a person may take on an Agent in `phase` wanting `desired`."""
    result = []
    if desired in ("stopped", HIBERNATED) and phase in ("Stopped", "Hibernated"):
        result.append("start")
    if desired == "running" and phase in _STOPPABLE:
        result.append("stop")
    # Only from a settled state: an Agent still on its way to what was asked waits for it.
    settled = (desired == "running" and phase in ("Running", "Degraded")) or (
        desired == "stopped" and phase == "Stopped"
    )
    if settled:
        result.append("hibernate")
    return result


class MintedToken(_View):
    token: str
    expires_at: int
    customer: str


class FleetRow(_View):
    namespace: str
    name: str
    phase: str | None = None
    phase_since: str | None = None
    desired_state: str | None = None
    customer_id: str | None = None
    message: str | None = None
    cost: dict[str, Any] | None = None
    last_event: EventView | None = None
    actions: list[str] = []


class Fleet(_View):
    items: list[FleetRow]
    can_write: bool
    subject: str | None = None


class ActionDone(_View):
    namespace: str
    name: str
    action: str
    desired_state: str
    by: str


def router(config: BridgeConfig, store: AgentStore, api: client.ApiClient) -> APIRouter:
    authorized = access.dependency(config.api_tokens, config.token_keys)
    Caller = Annotated[Principal, Depends(authorized)]
    routes = APIRouter(
        dependencies=[Depends(authorized)],
        tags=["fleet"],
        responses={
            401: {"description": "Missing or invalid bearer token"},
            403: {"description": "The token may not do this"},
        },
    )

    @routes.post("/v1/tokens", response_model=MintedToken, summary="Mint a customer token")
    async def mint_token(
        customer: Annotated[str, Query(pattern=CUSTOMER_PATTERN, max_length=63)],
        caller: Caller,
        ttl: Annotated[int, Query(ge=1, le=tokens.MAX_TTL)] = tokens.DEFAULT_TTL,
    ) -> MintedToken:
        caller.require_fleet()
        if not config.token_keys:
            # Not a 5xx: the bridge is healthy, this feature is switched off.
            raise HTTPException(403, "token minting is off: set AURA_TOKEN_KEYS to mint tokens")
        token = tokens.mint(config.token_keys, tokens.CUSTOMER_READ, customer=customer, ttl=ttl)
        claims = tokens.verify(config.token_keys, token)
        return MintedToken(token=token, expires_at=claims.expires, customer=customer)

    @routes.get("/v1/fleet", response_model=Fleet, summary="Every agent, for the team")
    async def fleet(caller: Caller) -> Fleet:
        caller.require_fleet()
        try:
            agents = await store.select("")
            events = await read_events(api, None, request_timeout=5.0)
        except Exception as exc:
            raise HTTPException(503, f"kubernetes API unavailable ({classify(exc)})") from None
        by_agent: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for event in events:
            regarding = event.get("regarding") or {}
            key = (str(regarding.get("namespace")), str(regarding.get("name")))
            by_agent.setdefault(key, []).append(event)
        rows = []
        for agent in agents:
            view = AgentView.of(agent.obj)
            entries = ordered(by_agent.get((agent.namespace, agent.name), []))
            rows.append(
                FleetRow(
                    namespace=view.namespace,
                    name=view.name,
                    phase=view.phase,
                    phase_since=view.phase_since,
                    desired_state=view.desired_state,
                    customer_id=view.customer_id,
                    message=view.message,
                    cost=view.cost,
                    last_event=EventView.of(entries[-1]) if entries else None,
                    actions=allowed_actions(view.phase, view.desired_state),
                )
            )
        rows.sort(key=lambda r: (r.namespace, r.name))
        return Fleet(items=rows, can_write=caller.can_write, subject=caller.subject)

    @routes.post(
        "/v1/agents/{namespace}/{name}/actions/{action}",
        response_model=ActionDone,
        summary="Start, stop or hibernate an agent (fleet:write tokens)",
        responses={404: {"description": "No such agent"}, 409: {"description": "Not now"}},
    )
    async def act(
        namespace: Namespace,
        name: Name,
        action: Annotated[str, Path(pattern="^(start|stop|hibernate)$")],
        caller: Caller,
    ) -> ActionDone:
        caller.require_fleet()
        who = caller.require_write()
        try:
            agent = await store.get(namespace, name)
        except BridgeError:
            raise HTTPException(503, "kubernetes API unavailable") from None
        if agent is None:
            raise HTTPException(404, "no such agent")
        view = AgentView.of(agent.obj)
        possible = allowed_actions(view.phase, view.desired_state)
        if action not in possible:
            raise HTTPException(
                409,
                f"{action} is not possible in phase {view.phase} (desiredState "
                f"{view.desired_state}); possible now: {', '.join(possible) or 'none'}",
            )
        desired = ACTIONS[action]
        at = datetime.now(UTC)
        patch = {
            "spec": {"desiredState": desired, "desiredStateReason": f"{action} by {who}"},
            "metadata": {
                "annotations": {
                    ANNOTATION_ACTION: action,
                    ANNOTATION_ACTION_BY: who,
                    ANNOTATION_ACTION_AT: at.isoformat(timespec="seconds"),
                }
            },
        }
        try:
            await store.patch(agent, patch)
        except Conflict:
            raise HTTPException(409, "the agent changed meanwhile; reload and retry") from None
        except BridgeError as exc:
            raise HTTPException(503, f"kubernetes API: {exc}") from None
        await _post_event(api, agent.obj, action, who, at)
        return ActionDone(
            namespace=namespace, name=name, action=action, desired_state=desired, by=who
        )

    return routes


async def _post_event(
    api: client.ApiClient, agent: Mapping[str, Any], action: str, who: str, at: datetime
) -> None:
    """An Event recording the action; a failure is logged, the patch already holds the record."""
    meta = agent["metadata"]
    # A raw dict (the client passes it through), like the status patches.
    body: Any = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        # Named as client-go names Events (events.k8s.io refuses a generateName ending in
        # a dot); the MicroTime always with six digits, as the apiserver parses it.
        "metadata": {
            "name": f"{meta['name'][:230]}.{time.time_ns():x}",
            "namespace": meta["namespace"],
        },
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": REPORTER,
        "reportingInstance": "aura-bridge",
        "action": action.capitalize(),
        "reason": f"Manual{action.capitalize()}",
        "type": "Normal",
        "note": f"{who} asked to {action} this agent from the fleet page",
        "regarding": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Agent",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
    }
    try:
        await client.EventsV1Api(api).create_namespaced_event(
            meta["namespace"], body, _request_timeout=5.0
        )
    except Exception as exc:
        log.warning("could not record the %s action as an Event: %s", action, classify(exc))
